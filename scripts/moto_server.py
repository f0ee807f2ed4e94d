"""moto's server (`moto_server`), plus what its CloudFormation lacks.

moto 5.2.5 creates AWS::SQS::Queue, AWS::SNS::Topic, AWS::IAM::Role, AWS::Lambda::*
from a template, but skips AWS::SNS::Subscription and AWS::CloudWatch::Alarm
(with a warning; the stack still reaches CREATE_COMPLETE) and drops an
AWS::SNS::Topic's Tags. The exported template's round trip (provisioner
tests/cloudformation.rs) needs all three, so this launcher registers them with
moto's CloudFormation before serving. Each handler calls the same moto backend
method the matching API call would (PutMetricAlarm, Subscribe, TagResource), so
what `provisioner plan` reads afterwards is what moto itself stored.

It also keeps a Lambda function's LoggingConfig, which moto 5.2.5 drops
(CreateFunction and UpdateFunctionConfiguration ignore it, GetFunction returns
none): stored on moto's own LambdaFunction and answered with AWS's defaults
(LogFormat Text and LogGroup /aws/lambda/{name}; with JSON, both log levels
INFO), as the Lambda API reference documents LoggingConfig.

And it serves SQS's dead-letter-queue redrive, which moto 5.2.5 answers with
NotImplementedError: StartMessageMoveTask, ListMessageMoveTasks and
CancelMessageMoveTask, as the SQS API Reference documents them
(AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html):
the source must be a dead-letter queue of another queue, one active task per
source, at most MaxNumberOfMessagesPerSecond (1..500) messages a second, the
destination by default the queue the messages were dead-lettered from; a task
moves the messages visible when it starts, each sent anew to the destination
(a fresh receive count) and removed from the source, in a thread of its own,
so progress and cancelling can be watched.

And it makes SQS's ReceiveMessage atomic per queue. moto 5.2.5 checks that a
message is visible and marks it received in two steps with no lock, so two
concurrent receives (the local trigger's pollers) can both be handed the same
message, each with the same receive count: seen as two images of one prompt
within a second, in a 30 s visibility timeout (tests/volume.rs, 1 run in 4 on
a 2-core machine). SQS hides a received message from other consumers for the
visibility timeout (AWSSimpleQueueService/latest/SQSDeveloperGuide/
sqs-visibility-timeout.html); here each receive picks its messages under the
queue's own lock, and a long poll waits outside it.

And CloudWatch Logs' Live Tail as AWS serves it (AmazonCloudWatchLogs/latest/
APIReference/API_StartLiveTail.html): moto 5.2.5's StartLiveTail answers once
with the events already stored and ends. Here the answer is a stream in AWS's
event-stream encoding (application/vnd.amazon.eventstream): the initial-response
event of AWS's JSON protocols, one sessionStart,
then every second a sessionUpdate with the matching events ingested since the
last one (none before the session began; empty when there are none; at most
500, `sampled` when more), until the client closes the connection or, after
three hours, a SessionTimeoutException. moto's own StartLiveTail checks the
request first (its errors are answered as before); the groups are found by ARN
or name (moto's lookup answers any ARN with the last group it holds). A client reaches it with
AWS_DISABLE_HOST_PREFIX_INJECTION=true (scripts/moto exports it): the
operation's modelled `stream-` host prefix would make 127.0.0.1 unreachable.

And a published version (a copy moto makes without running its constructor)
answers a queue's delivery like `$LATEST` does (moto tries Docker, fails, and
the message goes back to the queue) instead of raising AttributeError out of
SendMessage (500) when an event source mapping names an alias.

And API Gateway v2's UpdateStage, which moto 5.2.5 answers with
NotImplementedError, as the API reference documents it
(apigatewayv2/latest/api-reference/apis-apiid-stages-stagename.html, PATCH):
the members given replace the stage's (accessLogSettings, autoDeploy,
clientCertificateId, description, stageVariables), defaultRouteSettings and
each route's routeSettings are merged field by field, the stage keeps its
name and creation date, lastUpdatedDate moves; an unknown stage is
NotFoundException. So a changed stage is one in-place update, as on AWS.

And API Gateway v2's GetAuthorizers (the list; moto 5.2.5 serves only one
authorizer by id), as the API reference documents it
(apigatewayv2/latest/api-reference/apis-apiid-authorizers.html, GET): every
authorizer of the API in `items`; and DeleteAuthorizer refuses, as AWS does,
an authorizer a route still uses (ConflictException), so the provisioner's
order (detach the route, then delete) is exercised.

And Lambda's GetAccountSettings, which moto 5.2.5 does not serve
(lambda/latest/api/API_GetAccountSettings.html): AccountLimit with
ConcurrentExecutions from MOTO_LAMBDA_CONCURRENCY_QUOTA (the variable moto's
PutFunctionConcurrency enforces its rule with; AWS's default, 1,000, when
unset) and UnreservedConcurrentExecutions = that minus every function's
reserved concurrency; AccountUsage with the function count and code size.
Tests set the quota with `POST /moto-api/couch/lambda-concurrency-quota
{"quota": N}` (`null` unsets it), as an account whose quota is 10 would be.

And Lambda's Invoke runs the function: scripts/moto_lambda_invoke.py serves a
Runtime API and runs the deployed function's host build under it (moto 5.2.5
needs Docker and otherwise answers a FunctionError), so the provisioner's
pre-traffic health check and `provisioner verify` run for real here.

And IAM enforcement (`POST /moto-api/reset-auth`) honours permissions
boundaries: scripts/moto_iam_boundaries.py. moto 5.2.5 decides from the
caller's identity policies alone and evaluates none of their conditions
(a statement with a Condition applies as if it held). As the IAM User Guide
documents the evaluation (IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
access_policies_boundaries.html), a role session (or a user, when moto
stores its boundary) may do only what both its identity policies and its
boundary policy allow, an explicit deny in either refusing; and a condition
on `iam:PermissionsBoundary` is evaluated for the actions the Service
Authorization Reference lists it with: the boundary CreateRole /
PutRolePermissionsBoundary set, or the role's current one (String*, Arn*,
their IfExists forms, Null; an absent key matches no positive operator).
CreateRole is checked against the ARN of the role it creates (moto: `*`).
Conditions on other keys stay as moto has them.

And Lambda's version numbers as AWS gives them: moto 5.2.5 numbers a new
version `len(versions) + 1`, so once a version is deleted the next publish
repeats a number that exists (two versions "4"). Lambda "increments the
version number each time you publish" and never reuses one (Lambda developer
guide, configuration-versions.html): here a function keeps the highest
number it ever published, and a new version is that plus one, across
deletions (a function deleted and made again starts anew, as on AWS).
Tested by scripts/test_moto_lambda_versions.py.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT (moto_server's options).
"""

import base64
import copy
import struct
import zlib
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

import moto_lambda_invoke  # scripts/: the Runtime API that runs a function on Invoke
import moto_iam_boundaries  # scripts/: permissions boundaries in IAM enforcement
from datetime import datetime
from urllib.parse import unquote

from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.awslambda import urls as lambda_urls
from moto.awslambda.models import LambdaFunction, LambdaStorage
from moto.awslambda.responses import LambdaResponse
from moto.moto_api._internal import urls as moto_api_urls
from moto.cloudwatch.models import cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.common_models import CloudFormationModel
from moto.server import main
from moto.sns.models import Topic, sns_backends
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import unix_time
from moto.logs.exceptions import ResourceNotFoundException as LogsResourceNotFound
from moto.logs.responses import LogsResponse
from moto.logs.utils import EventMessageFilter
from moto.sqs.exceptions import InvalidParameterValue, QueueDoesNotExist, SQSException
from moto.sqs.models import SQSBackend
from moto.utilities.docker_utilities import DockerModel
from moto.sqs.responses import SQSResponse


class MetricAlarmFromTemplate(CloudFormationModel):
    """AWS::CloudWatch::Alarm (a metric alarm): Ref is the name, Arn its ARN."""

    # moto files every model under the service its module is named after.
    __module__ = "moto.cloudwatch.from_template"

    def __init__(self, alarm: Any):
        self.alarm = alarm

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    @property
    def physical_resource_id(self) -> str:
        return self.alarm.name

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return self.alarm.alarm_arn
        raise KeyError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> "MetricAlarmFromTemplate":
        p = cloudformation_json["Properties"]
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=resource_name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p["Period"]) if "Period" in p else None,
            threshold=float(p["Threshold"]),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=[
                {"Name": d["Name"], "Value": d["Value"]}
                for d in p.get("Dimensions", [])
            ],
            alarm_actions=p.get("AlarmActions", []),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            actions_enabled=str(p.get("ActionsEnabled", True)).lower() == "true",
            treat_missing_data=p.get("TreatMissingData"),
            tags=p.get("Tags", []),
        )
        return cls(alarm)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


class SubscriptionFromTemplate(CloudFormationModel):
    """AWS::SNS::Subscription: Ref is the subscription ARN."""

    __module__ = "moto.sns.from_template"

    def __init__(self, subscription: Any):
        self.subscription = subscription

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.subscription.arn

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> "SubscriptionFromTemplate":
        p = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        return cls(backend.subscribe(p["TopicArn"], p["Endpoint"], p["Protocol"]))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> None:
        sns_backends[account_id][region_name].unsubscribe(resource_name)


_create_topic = Topic.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _create_topic_with_tags(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Topic:
    properties = cloudformation_json["Properties"]
    tags = {t["Key"]: t["Value"] for t in properties.get("Tags", [])}
    without_tags = {
        **cloudformation_json,
        "Properties": {k: v for k, v in properties.items() if k != "Tags"},
    }
    topic = _create_topic(cls, resource_name, without_tags, account_id, region_name, **kwargs)
    if tags:
        sns_backends[account_id][region_name].tag_resource(topic.arn, tags)
    return topic


Topic.create_from_cloudformation_json = classmethod(_create_topic_with_tags)  # type: ignore[method-assign,assignment]

def _logging_config(given: dict[str, Any] | None, function_name: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """LoggingConfig as Lambda answers it: what was given over what was set
    before, over AWS's defaults; the log levels only with the JSON format."""
    config = dict(current or {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}"})
    config.update(given or {})
    if config.get("LogFormat") == "JSON":
        config.setdefault("ApplicationLogLevel", "INFO")
        config.setdefault("SystemLogLevel", "INFO")
    else:
        config.pop("ApplicationLogLevel", None)
        config.pop("SystemLogLevel", None)
    return config


_lambda_init = LambdaFunction.__init__
_lambda_get_configuration = LambdaFunction.get_configuration
_lambda_update_configuration = LambdaFunction.update_configuration


def _lambda_init_with_logging(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    _lambda_init(self, account_id, spec, *args, **kwargs)
    self.logging_config = _logging_config(spec.get("LoggingConfig"), self.function_name)


def _lambda_get_configuration_with_logging(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    config = _lambda_get_configuration(self, *args, **kwargs)
    config["LoggingConfig"] = getattr(self, "logging_config", None) or _logging_config(None, self.function_name)
    return config


def _lambda_update_configuration_with_logging(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
    if "LoggingConfig" in config_updates:
        self.logging_config = _logging_config(
            config_updates["LoggingConfig"], self.function_name, getattr(self, "logging_config", None)
        )
    return _lambda_update_configuration(self, config_updates)


LambdaFunction.__init__ = _lambda_init_with_logging  # type: ignore[method-assign]
LambdaFunction.get_configuration = _lambda_get_configuration_with_logging  # type: ignore[method-assign]
LambdaFunction.update_configuration = _lambda_update_configuration_with_logging  # type: ignore[method-assign]

# --- SQS message move tasks (DLQ redrive) ------------------------------------

_MOVE_TASKS: dict[str, list[dict[str, Any]]] = {}  # source ARN -> its tasks, newest first
_MOVE_LOCK = threading.Lock()
# Without MaxNumberOfMessagesPerSecond SQS chooses the rate; here: this one.
_DEFAULT_RATE = 100


class _ResourceNotFound(SQSException):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class _UnsupportedOperation(SQSException):
    def __init__(self, message: str) -> None:
        super().__init__("UnsupportedOperation", message)


def _queue_by_arn(backend: Any, arn: str, what: str) -> Any:
    try:
        return backend.get_queue(arn.rsplit(":", 1)[-1])
    except QueueDoesNotExist:
        raise _ResourceNotFound(f"The {what} queue {arn} does not exist.")


def _run_move_task(backend: Any, task: dict[str, Any], source: Any, destination: Any) -> None:
    interval = 1.0 / (task.get("MaxNumberOfMessagesPerSecond") or _DEFAULT_RATE)
    try:
        while task["ApproximateNumberOfMessagesMoved"] < task["ApproximateNumberOfMessagesToMove"]:
            if task["Status"] != "RUNNING":
                break
            with source._messages_lock:
                visible = source.messages
                message = visible[0] if visible else None
                if message is not None:
                    source._messages.remove(message)
            if message is None:
                break
            backend.send_message(
                destination.name,
                message.body,
                message_attributes=message.message_attributes,
            )
            task["ApproximateNumberOfMessagesMoved"] += 1
            time.sleep(interval)
        task["Status"] = "CANCELLED" if task["Status"] == "CANCELLING" else "COMPLETED"
    except Exception as e:  # the task fails, as a task does on SQS
        task["Status"] = "FAILED"
        task["FailureReason"] = str(e)


def _start_message_move_task(self: Any) -> ActionResult:
    backend = self.sqs_backend
    source_arn = self._get_param("SourceArn")
    destination_arn = self._get_param("DestinationArn")
    rate = self._get_param("MaxNumberOfMessagesPerSecond")
    source = _queue_by_arn(backend, source_arn, "source")
    feeding = backend.list_dead_letter_source_queues(source.name)
    if not feeding:
        raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
    if rate is not None and not 1 <= int(rate) <= 500:
        raise InvalidParameterValue("MaxNumberOfMessagesPerSecond must be between 1 and 500.")
    destination = _queue_by_arn(backend, destination_arn, "destination") if destination_arn else feeding[0]
    with _MOVE_LOCK:
        tasks = _MOVE_TASKS.setdefault(source_arn, [])
        if any(t["Status"] in ("RUNNING", "CANCELLING") for t in tasks):
            raise _UnsupportedOperation("There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
        handle = base64.b64encode(
            json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn}).encode()
        ).decode()
        task: dict[str, Any] = {
            "TaskHandle": handle,
            "Status": "RUNNING",
            "SourceArn": source_arn,
            "ApproximateNumberOfMessagesMoved": 0,
            "ApproximateNumberOfMessagesToMove": len(source.messages),
            "StartedTimestamp": int(time.time() * 1000),
        }
        if destination_arn:
            task["DestinationArn"] = destination_arn
        if rate is not None:
            task["MaxNumberOfMessagesPerSecond"] = int(rate)
        tasks.insert(0, task)
    threading.Thread(target=_run_move_task, args=(backend, task, source, destination), daemon=True).start()
    return ActionResult({"TaskHandle": handle})


def _list_message_move_tasks(self: Any) -> ActionResult:
    source_arn = self._get_param("SourceArn")
    max_results = int(self._get_param("MaxResults") or 1)
    if not 1 <= max_results <= 10:
        raise InvalidParameterValue("MaxResults must be between 1 and 10.")
    _queue_by_arn(self.sqs_backend, source_arn, "source")
    with _MOVE_LOCK:
        tasks = list(_MOVE_TASKS.get(source_arn, []))[:max_results]
    results = []
    for t in tasks:
        r = {k: v for k, v in t.items() if k != "TaskHandle"}
        if t["Status"] == "RUNNING":  # only a running task's handle is returned
            r["TaskHandle"] = t["TaskHandle"]
        results.append(r)
    return ActionResult({"Results": results})


def _cancel_message_move_task(self: Any) -> ActionResult:
    handle = self._get_param("TaskHandle")
    with _MOVE_LOCK:
        for tasks in _MOVE_TASKS.values():
            for t in tasks:
                if t["TaskHandle"] == handle:
                    if t["Status"] != "RUNNING":
                        raise _UnsupportedOperation(f"The task is {t['Status']}, not RUNNING.")
                    t["Status"] = "CANCELLING"
                    return ActionResult({"ApproximateNumberOfMessagesMoved": t["ApproximateNumberOfMessagesMoved"]})
    raise _ResourceNotFound("The task handle does not name a task.")


SQSResponse.start_message_move_task = _start_message_move_task  # type: ignore[attr-defined]
SQSResponse.list_message_move_tasks = _list_message_move_tasks  # type: ignore[attr-defined]
SQSResponse.cancel_message_move_task = _cancel_message_move_task  # type: ignore[attr-defined]

_moto_receive_message = SQSBackend.receive_message


def _receive_message_atomically(
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    queue = self.get_queue(queue_name)
    polling_end = unix_time() + wait_seconds_timeout
    while True:
        # moto's own receive without its long poll: it picks, marks and
        # dead-letters under the queue's lock (the one SendMessage takes).
        with queue._messages_lock:
            got = _moto_receive_message(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
        remaining = polling_end - unix_time()
        if got or remaining <= 0:
            return got
        # Wake when a message arrives; a visible message another receive
        # takes first sends this one round again (not more than 20 a second).
        queue.wait_for_messages(min(1, remaining))
        time.sleep(0.05)


SQSBackend.receive_message = _receive_message_atomically  # type: ignore[method-assign]

def _event_stream_message(headers: dict[str, str], payload: dict[str, Any]) -> bytes:
    """One message of AWS's event-stream encoding: prelude (total and headers
    lengths, their CRC32), string headers, payload, CRC32 of all before it."""
    encoded = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 16 + len(encoded) + len(body), len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + body
    return message + struct.pack(">I", zlib.crc32(message))


def _live_tail_event(kind: str, payload: dict[str, Any]) -> bytes:
    return _event_stream_message(
        {":message-type": "event", ":event-type": kind, ":content-type": "application/json"}, payload
    )


_LIVE_TAIL_SECONDS = 3 * 3600  # "Live Tail sessions time out after three hours."
_LIVE_TAIL_MAX_EVENTS = 500  # per sessionUpdate; more are sampled down


def _start_live_tail(self: Any) -> tuple[Any, dict[str, str]]:
    backend = self.logs_backend
    identifiers = self._get_param("logGroupIdentifiers")
    names = self._get_param("logStreamNames")
    prefixes = self._get_param("logStreamNamePrefixes")
    pattern = self._get_param("logEventFilterPattern")
    # moto's own checks (at most 10 groups, names or prefixes, groups exist).
    session_start, _ = backend.start_live_tail(
        log_group_identifiers=identifiers,
        log_stream_names=names,
        log_stream_name_prefixes=prefixes,
        log_event_filter_pattern=pattern,
    )
    # moto's own lookup returns the last group for any ARN (its loop does not
    # stop at the match): each identifier is a group's ARN or its name.
    groups = []
    for identifier in identifiers:
        found = [g for g in backend.groups.values() if identifier in (g.arn, g.name)]
        if not found:
            raise LogsResourceNotFound()
        groups.append(found[0])
    matcher = EventMessageFilter(pattern or "")

    def events() -> list[tuple[Any, Any, Any]]:
        return [
            (group, stream, event)
            for group in groups
            for stream in backend._get_live_tail_streams(group, names or [], prefixes or [])
            for event in list(stream.events)
        ]

    # Only what is ingested after the session starts.
    seen = {event.event_id for _, _, event in events()}

    def stream() -> Any:
        # As AWS's JSON protocols begin an event stream (botocore requires it).
        yield _live_tail_event("initial-response", {})
        yield _live_tail_event("sessionStart", session_start)
        ends = time.monotonic() + _LIVE_TAIL_SECONDS
        while time.monotonic() < ends:
            time.sleep(1)
            new = []
            for group, log_stream, event in events():
                if event.event_id in seen:
                    continue
                seen.add(event.event_id)
                if matcher.matches(event.message):
                    new.append(
                        {
                            "logStreamName": log_stream.log_stream_name,
                            "logGroupIdentifier": group.arn,
                            "message": event.message,
                            "timestamp": event.timestamp,
                            "ingestionTime": event.ingestion_time,
                        }
                    )
            new.sort(key=lambda e: e["timestamp"])
            yield _live_tail_event(
                "sessionUpdate",
                {
                    "sessionMetadata": {"sampled": len(new) > _LIVE_TAIL_MAX_EVENTS},
                    "sessionResults": new[:_LIVE_TAIL_MAX_EVENTS],
                },
            )
        yield _event_stream_message(
            {
                ":message-type": "exception",
                ":exception-type": "SessionTimeoutException",
                ":content-type": "application/json",
            },
            {"message": "The Live Tail session timed out after three hours."},
        )

    return stream(), {"Content-Type": "application/vnd.amazon.eventstream"}


LogsResponse.start_live_tail = _start_live_tail  # type: ignore[method-assign,assignment]

# A version moto copied from $LATEST lacks the instance attribute the Docker
# client property reads; the class default makes it behave as $LATEST does.
DockerModel._DockerModel__docker_client = None  # type: ignore[attr-defined]

_STAGE_FIELDS = {
    # UpdateStage's request members and the moto Stage attribute each sets.
    "accessLogSettings": "access_log_settings",
    "autoDeploy": "auto_deploy",
    "clientCertificateId": "client_certificate_id",
    "description": "description",
    "stageVariables": "stage_variables",
}


def _update_stage(self: Any) -> tuple[int, dict[str, str], str]:
    api_id = self.path.split("/")[-3]
    stage_name = unquote(self.path.split("/")[-1])
    stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)  # NotFoundException if absent
    changes = json.loads(self.body or "{}")
    for member, attribute in _STAGE_FIELDS.items():
        if member in changes:
            setattr(stage, attribute, changes[member])
    if "defaultRouteSettings" in changes:
        stage.default_route_settings = {**(stage.default_route_settings or {}), **changes["defaultRouteSettings"]}
    for route_key, settings in (changes.get("routeSettings") or {}).items():
        stage.route_settings[route_key] = {**stage.route_settings.get(route_key, {}), **settings}
    stage.updated = datetime.now()
    return 200, {}, json.dumps(stage.to_json())


ApiGatewayV2Response.update_stage = _update_stage  # type: ignore[attr-defined]


def _get_authorizers(self: Any) -> tuple[int, dict[str, str], str]:
    api_id = self.path.split("/")[-2]
    api = self.apigatewayv2_backend.get_api(api_id)  # NotFoundException if absent
    items = [a.to_json() for a in api.authorizers.values()]
    return 200, {}, json.dumps({"items": items})


_moto_delete_authorizer = ApiGatewayV2Response.delete_authorizer


def _delete_authorizer(self: Any) -> tuple[int, dict[str, str], str]:
    api_id = self.path.split("/")[-3]
    authorizer_id = self.path.split("/")[-1]
    api = self.apigatewayv2_backend.get_api(api_id)
    using = [r.route_key for r in api.routes.values() if r.authorizer_id == authorizer_id]
    if using:
        message = f"Cannot delete authorizer '{authorizer_id}', is referenced in route: {using[0]}"
        # moto takes the status from the headers.
        return 409, {"status": "409", "x-amzn-ErrorType": "ConflictException"}, json.dumps({"message": message})
    return _moto_delete_authorizer(self)


ApiGatewayV2Response.get_authorizers = _get_authorizers  # type: ignore[attr-defined]
ApiGatewayV2Response.delete_authorizer = _delete_authorizer  # type: ignore[method-assign]

# AWS's default concurrency quota (lambda/latest/dg/gettingstarted-limits.html).
_DEFAULT_CONCURRENCY = 1000


def _get_account_settings(self: Any) -> tuple[int, dict[str, str], str]:
    quota = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", _DEFAULT_CONCURRENCY))
    functions = list(self.backend.list_functions())
    reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
    code = sum(int(f.code_size or 0) for f in self.backend.list_functions("ALL"))
    return 200, {}, json.dumps({
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": quota,
            "UnreservedConcurrentExecutions": quota - reserved,
        },
        "AccountUsage": {"TotalCodeSize": code, "FunctionCount": len(functions)},
    })


def _set_concurrency_quota(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    raw = request.get_data() if hasattr(request, "get_data") else request.data
    quota = json.loads(raw or b"{}").get("quota")
    if quota is None:
        os.environ.pop("MOTO_LAMBDA_CONCURRENCY_QUOTA", None)
    else:
        os.environ["MOTO_LAMBDA_CONCURRENCY_QUOTA"] = str(int(quota))
    return 201, {}, ""


LambdaResponse.get_account_settings = _get_account_settings  # type: ignore[attr-defined]


# CloudWatch PutCompositeAlarm (AmazonCloudWatch/latest/APIReference/
# API_PutCompositeAlarm.html): moto models a composite alarm as an alarm with
# a rule (DescribeAlarms lists it under CompositeAlarms) but serves no call
# that makes one. Name, rule, description, actions and tags, as AWS takes them.
def _put_composite_alarm(self: Any) -> Any:
    self.cloudwatch_backend.put_metric_alarm(
        name=self._get_param("AlarmName"),
        namespace=None,
        metric_name=None,
        comparison_operator=None,
        evaluation_periods=None,
        period=None,
        threshold=None,
        statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        actions_enabled=self._get_bool_param("ActionsEnabled", True),
        rule=self._get_param("AlarmRule"),
        tags=self._get_param("Tags", []),
    )
    return EmptyResult()


CloudWatchResponse.put_composite_alarm = _put_composite_alarm  # type: ignore[attr-defined]
# With its trailing slash, as the SDKs send it (moto's path conversion drops a `/?`).
lambda_urls.url_paths[r"{0}/(?P<api_version>[^/]+)/account-settings/$"] = LambdaResponse.dispatch
moto_api_urls.url_paths["{0}/moto-api/couch/lambda-concurrency-quota"] = _set_concurrency_quota

def _publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
    function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
    name = function.function_name
    group = self._functions.get(name)
    if not group or not group["latest"]:
        return None
    versions = group["versions"]
    if versions and not function.code_or_config_updated:
        # Nothing changed since the last version: that version, as AWS answers.
        return versions[-1]
    function.code_or_config_updated = False
    # The highest number ever published, kept across deletions of versions.
    highest = max([group.get("highest_version", 0)] + [int(str(v.version)) for v in versions])
    group["highest_version"] = highest + 1
    fn = copy.copy(group["latest"])
    fn.set_version(highest + 1)
    if description:
        fn.description = description
    versions.append(fn)
    self._arns[fn.function_arn] = fn
    return fn


LambdaStorage.publish_version = _publish_version  # type: ignore[method-assign]

# Lambda Invoke runs the deployed function's host build (scripts/moto_lambda_invoke.py).
moto_lambda_invoke.install(sys.argv[1:])

# IAM enforcement honours permissions boundaries (scripts/moto_iam_boundaries.py).
moto_iam_boundaries.install()

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
