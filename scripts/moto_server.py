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

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT (moto_server's options).
"""

import base64
import json
import sys
import threading
import time
import uuid
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.server import main
from moto.sns.models import Topic, sns_backends
from moto.core.responses import ActionResult
from moto.sqs.exceptions import InvalidParameterValue, QueueDoesNotExist, SQSException
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

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
