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

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT (moto_server's options).
"""

import sys
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.server import main
from moto.sns.models import Topic, sns_backends


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

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
