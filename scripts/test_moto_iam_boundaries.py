"""Tests of scripts/moto_iam_boundaries.py through scripts/moto_server.py (one
server for the module, on a free port): with IAM enforcement on, a role's
permissions boundary limits its sessions, and a condition on
iam:PermissionsBoundary is evaluated against the request, as the IAM User
Guide documents them (access_policies_boundaries.html,
reference_policies_evaluation-logic.html); other condition keys stay as moto
has them (not evaluated: the statement applies).

Each test sets up its own names with enforcement off (dummy keys), then
switches it on (`POST /moto-api/reset-auth` 0) and acts as an assumed role.
  .venv/bin/python -m unittest -v scripts/test_moto_iam_boundaries.py
"""

from __future__ import annotations

import json
import os
import sys
import unittest
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REGION = "eu-west-1"
EVERYTHING = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]

# The launcher, on a free port (scripts/launcher_test_server.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from launcher_test_server import Launcher  # noqa: E402

_launcher = Launcher()
setUpModule, tearDownModule = _launcher.module_fixtures()


def enforce(on: bool) -> None:
    """moto's IAM enforcement: from the next call on (0 free calls), or never."""
    body = b"0" if on else b"inf"
    # A JSON content type: a form's body would be parsed away from request.data.
    request = urllib.request.Request(
        f"{_launcher.endpoint}/moto-api/reset-auth", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def client(service: str, keys: dict[str, str] | None = None) -> Any:
    """A boto3 client for the server; dummy keys unless `keys` (Credentials of STS, or a user's)."""
    return _launcher.client(service, REGION, keys)


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def refused(error: ClientError) -> bool:
    """Access denied, however it came back (SQS's 403 is XML boto3 cannot parse)."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 403 or "AccessDenied" in code


class Case(unittest.TestCase):
    def setUp(self) -> None:
        enforce(False)
        self.n = uuid.uuid4().hex[:8]
        self.iam = client("iam")
        self.addCleanup(enforce, False)

    def denied(self, what: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except ClientError as e:
            self.assertTrue(refused(e), f"{what}: refused otherwise: {e.response}")
            return
        self.fail(f"{what}: allowed")

    def allowed(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ClientError as e:
            self.assertFalse(refused(e), f"{what}: access denied: {e}")
            return e  # refused for another reason (e.g. NoSuchKey): not by IAM

    def policy(self, name: str, *statements: dict[str, Any]) -> str:
        """A managed policy; its ARN."""
        return self.iam.create_policy(PolicyName=name, PolicyDocument=doc(*statements))["Policy"]["Arn"]

    def role(self, name: str, inline: list[dict[str, Any]] | None = None, boundary: str | None = None) -> str:
        """A role the test's user may assume, with `inline` as its inline policy; its ARN."""
        trust = doc({"Effect": "Allow", "Principal": {"AWS": self.user_arn()}, "Action": "sts:AssumeRole"})
        extra = {"PermissionsBoundary": boundary} if boundary else {}
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **extra)["Role"]["Arn"]
        if inline:
            self.iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=doc(*inline))
        return arn

    def user_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:user/u-{self.n}"

    def user_keys(self) -> dict[str, str]:
        """The test's user: may assume any role (each role's trust names it)."""
        name = f"u-{self.n}"
        self.iam.create_user(UserName=name)
        self.iam.put_user_policy(
            UserName=name,
            PolicyName="assume",
            PolicyDocument=doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
        )
        return self.iam.create_access_key(UserName=name)["AccessKey"]

    def session(self, user: dict[str, str], role_arn: str) -> dict[str, str]:
        """The Credentials of a session of `role_arn`, assumed by `user` (under enforcement)."""
        sts = client("sts", user)
        return sts.assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]


class RoleCreation(Case):
    """A `ci` role may create and change pr-* roles only when they carry the boundary."""

    def test_ci_creates_and_changes_roles_only_with_the_boundary(self) -> None:
        n = self.n
        boundary = self.policy(f"boundary-{n}", {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
        other = self.policy(f"other-{n}", {"Effect": "Allow", "Action": "*", "Resource": "*"})
        ci = self.role(
            f"ci-{n}",
            [
                {
                    "Effect": "Allow",
                    "Action": [
                        "iam:CreateRole",
                        "iam:PutRolePolicy",
                        "iam:PutRolePermissionsBoundary",
                        "iam:AttachRolePolicy",
                    ],
                    "Resource": f"arn:aws:iam::{ACCOUNT}:role/pr-*",
                    "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}},
                }
            ],
        )
        old = f"pr-{n}-old"  # made before enforcement, without a boundary
        self.role(old)
        user = self.user_keys()
        enforce(True)

        iam = client("iam", self.session(user, ci))
        trust = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
        inline = doc({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})
        self.denied("CreateRole without a boundary", lambda: iam.create_role(RoleName=f"pr-{n}-a", AssumeRolePolicyDocument=trust))
        self.denied(
            "CreateRole with another boundary",
            lambda: iam.create_role(RoleName=f"pr-{n}-b", AssumeRolePolicyDocument=trust, PermissionsBoundary=other),
        )
        self.denied(
            "CreateRole with the boundary, outside pr-*",
            lambda: iam.create_role(RoleName=f"x-{n}", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary),
        )
        created = self.allowed(
            "CreateRole with the boundary",
            lambda: iam.create_role(RoleName=f"pr-{n}-c", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary),
        )
        self.assertEqual(created["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"], boundary)
        self.allowed(
            "PutRolePolicy on the role it made",
            lambda: iam.put_role_policy(RoleName=f"pr-{n}-c", PolicyName="p", PolicyDocument=inline),
        )
        self.allowed(
            "AttachRolePolicy on the role it made",
            lambda: iam.attach_role_policy(RoleName=f"pr-{n}-c", PolicyArn=boundary),
        )
        self.denied(
            "PutRolePolicy on a role without a boundary",
            lambda: iam.put_role_policy(RoleName=old, PolicyName="p", PolicyDocument=inline),
        )
        self.denied("AttachRolePolicy on a role without a boundary", lambda: iam.attach_role_policy(RoleName=old, PolicyArn=boundary))
        self.denied(
            "PutRolePermissionsBoundary: another",
            lambda: iam.put_role_permissions_boundary(RoleName=old, PermissionsBoundary=other),
        )
        # The key is the boundary the request sets, not the role's (none) yet.
        self.allowed(
            "PutRolePermissionsBoundary: the boundary",
            lambda: iam.put_role_permissions_boundary(RoleName=old, PermissionsBoundary=boundary),
        )
        self.allowed(
            "PutRolePolicy once it has the boundary",
            lambda: iam.put_role_policy(RoleName=old, PolicyName="p", PolicyDocument=inline),
        )
        self.denied("an action the policy does not name (GetRole)", lambda: iam.get_role(RoleName=old))

        enforce(False)
        got = self.iam.get_role(RoleName=f"pr-{n}-c")["Role"]
        self.assertEqual(got["PermissionsBoundary"]["PermissionsBoundaryArn"], boundary)
        self.assertEqual(self.iam.list_role_policies(RoleName=f"pr-{n}-c")["PolicyNames"], ["p"])
        for refused_name in (f"pr-{n}-a", f"pr-{n}-b", f"x-{n}"):
            with self.assertRaises(ClientError):
                self.iam.get_role(RoleName=refused_name)

    def test_condition_operators_on_the_key(self) -> None:
        n = self.n
        boundary = self.policy(f"boundary-{n}", {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
        other = self.policy(f"other-{n}", {"Effect": "Allow", "Action": "*", "Resource": "*"})
        roles = f"arn:aws:iam::{ACCOUNT}:role/pr-{n}-*"
        ops = self.role(
            f"ops-{n}",
            [
                # ArnLike: wildcards within the ARN's parts.
                {
                    "Effect": "Allow",
                    "Action": "iam:PutRolePolicy",
                    "Resource": roles,
                    "Condition": {"ArnLike": {"iam:PermissionsBoundary": f"arn:aws:iam::*:policy/boundary-{n[:4]}*"}},
                },
                # ...IfExists: also when the role has no boundary.
                {
                    "Effect": "Allow",
                    "Action": "iam:DeleteRolePolicy",
                    "Resource": roles,
                    "Condition": {"StringEqualsIfExists": {"iam:PermissionsBoundary": boundary}},
                },
                # A negated operator in a Deny: an absent key matches it.
                {"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": roles},
                {
                    "Effect": "Deny",
                    "Action": "iam:AttachRolePolicy",
                    "Resource": "*",
                    "Condition": {"StringNotLike": {"iam:PermissionsBoundary": f"*:policy/boundary-{n}"}},
                },
                # Null false: the key must be present (the role has a boundary).
                {
                    "Effect": "Allow",
                    "Action": "iam:DetachRolePolicy",
                    "Resource": roles,
                    "Condition": {"Null": {"iam:PermissionsBoundary": "false"}},
                },
            ],
        )
        with_b, without, with_other = f"pr-{n}-with", f"pr-{n}-without", f"pr-{n}-other"
        self.role(with_b, boundary=boundary)
        self.role(without)
        self.role(with_other, boundary=other)
        for name in (with_b, without, with_other):
            self.iam.put_role_policy(RoleName=name, PolicyName="old", PolicyDocument=doc(*EVERYTHING))
            self.iam.attach_role_policy(RoleName=name, PolicyArn=other)
        user = self.user_keys()
        enforce(True)

        iam = client("iam", self.session(user, ops))
        put: Callable[[str], Callable[[], Any]] = lambda r: lambda: iam.put_role_policy(
            RoleName=r, PolicyName="new", PolicyDocument=doc(*EVERYTHING)
        )
        self.allowed("ArnLike, the boundary", put(with_b))
        self.denied("ArnLike, no boundary", put(without))
        self.denied("ArnLike, another boundary", put(with_other))

        delete: Callable[[str], Callable[[], Any]] = lambda r: lambda: iam.delete_role_policy(RoleName=r, PolicyName="old")
        self.allowed("StringEqualsIfExists, the boundary", delete(with_b))
        self.allowed("StringEqualsIfExists, no boundary", delete(without))
        self.denied("StringEqualsIfExists, another boundary", delete(with_other))

        attach: Callable[[str], Callable[[], Any]] = lambda r: lambda: iam.attach_role_policy(RoleName=r, PolicyArn=boundary)
        self.allowed("Deny StringNotLike, the boundary", attach(with_b))
        self.denied("Deny StringNotLike, no boundary", attach(without))
        self.denied("Deny StringNotLike, another boundary", attach(with_other))

        detach: Callable[[str], Callable[[], Any]] = lambda r: lambda: iam.detach_role_policy(RoleName=r, PolicyArn=other)
        self.allowed("Null false, the boundary", detach(with_b))
        self.denied("Null false, no boundary", detach(without))
        self.allowed("Null false, another boundary", detach(with_other))


class Boundary(Case):
    """A session of a role with a boundary may do only what the boundary allows too."""

    def test_inline_star_is_limited_by_the_boundary(self) -> None:
        n = self.n
        bucket = f"b-{n}"
        s3 = client("s3")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for key in ("pre/x", "pre/secret", "other/x"):
            s3.put_object(Bucket=bucket, Key=key, Body=b"data")
        sqs = client("sqs")
        inside_q = sqs.create_queue(QueueName=f"{n}-in")["QueueUrl"]
        outside_q = sqs.create_queue(QueueName=f"{n}-out")["QueueUrl"]
        boundary = self.policy(
            f"boundary-{n}",
            {"Effect": "Allow", "Action": "sqs:*", "Resource": f"arn:aws:sqs:*:{ACCOUNT}:{n}-in*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/pre/*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/pre/secret"},
        )
        inside = self.role(f"inside-{n}", EVERYTHING, boundary=boundary)
        free = self.role(f"free-{n}", EVERYTHING)  # the same policy, no boundary
        user = self.user_keys()
        enforce(True)

        keys = self.session(user, inside)
        s3, sqs, iam = client("s3", keys), client("sqs", keys), client("iam", keys)
        got = self.allowed("GetObject pre/x", lambda: s3.get_object(Bucket=bucket, Key="pre/x"))
        self.assertEqual(got["Body"].read(), b"data")
        missing = self.allowed("GetObject pre/missing", lambda: s3.get_object(Bucket=bucket, Key="pre/missing"))
        self.assertEqual(missing.response["Error"]["Code"], "NoSuchKey")
        self.denied("GetObject other/x", lambda: s3.get_object(Bucket=bucket, Key="other/x"))
        self.denied("GetObject pre/secret (a Deny in the boundary)", lambda: s3.get_object(Bucket=bucket, Key="pre/secret"))
        self.denied("PutObject pre/y", lambda: s3.put_object(Bucket=bucket, Key="pre/y", Body=b"y"))
        self.denied("ListRoles", lambda: iam.list_roles())
        self.denied("CreateUser", lambda: iam.create_user(UserName=f"v-{n}"))
        self.allowed("SendMessage to the boundary's queue", lambda: sqs.send_message(QueueUrl=inside_q, MessageBody="m"))
        got = self.allowed("ReceiveMessage from it", lambda: sqs.receive_message(QueueUrl=inside_q))
        self.assertEqual([m["Body"] for m in got["Messages"]], ["m"])
        self.denied("SendMessage to another queue", lambda: sqs.send_message(QueueUrl=outside_q, MessageBody="m"))

        # Without a boundary, the same inline policy: everything, as before.
        keys = self.session(user, free)
        s3, sqs, iam = client("s3", keys), client("sqs", keys), client("iam", keys)
        self.allowed("no boundary: GetObject other/x", lambda: s3.get_object(Bucket=bucket, Key="other/x"))
        self.allowed("no boundary: GetObject pre/secret", lambda: s3.get_object(Bucket=bucket, Key="pre/secret"))
        self.allowed("no boundary: ListRoles", lambda: iam.list_roles())
        self.allowed("no boundary: SendMessage to another queue", lambda: sqs.send_message(QueueUrl=outside_q, MessageBody="m"))

    def test_a_boundary_policy_that_does_not_exist_allows_nothing(self) -> None:
        n = self.n
        sqs = client("sqs")
        queue = sqs.create_queue(QueueName=f"{n}-q")["QueueUrl"]
        # moto's CreateRole checks the ARN's form only, not that the policy exists.
        role = self.role(f"ghost-{n}", EVERYTHING, boundary=f"arn:aws:iam::{ACCOUNT}:policy/none-{n}")
        user = self.user_keys()
        enforce(True)
        sqs = client("sqs", self.session(user, role))
        self.denied("SendMessage", lambda: sqs.send_message(QueueUrl=queue, MessageBody="m"))


class OtherConditionKeys(Case):
    """Conditions on other keys: as moto has them (not evaluated; the statement applies)."""

    def test_requested_region_is_not_evaluated(self) -> None:
        n = self.n
        sqs = client("sqs")
        queue = sqs.create_queue(QueueName=f"{n}-q")["QueueUrl"]
        boundary = self.policy(f"boundary-{n}", {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
        role = self.role(
            f"region-{n}",
            [
                # AWS would refuse these in eu-west-1; moto lets the condition hold.
                {
                    "Effect": "Allow",
                    "Action": "sqs:*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": "us-west-2"}},
                },
                {
                    "Effect": "Deny",
                    "Action": "sqs:DeleteQueue",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": "us-west-2"}},
                },
                # Both keys: the boundary's evaluated, the region's left to moto.
                {
                    "Effect": "Allow",
                    "Action": "iam:CreateRole",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"iam:PermissionsBoundary": boundary, "aws:RequestedRegion": "us-west-2"}
                    },
                },
            ],
        )
        user = self.user_keys()
        enforce(True)

        keys = self.session(user, role)
        sqs, iam = client("sqs", keys), client("iam", keys)
        self.allowed("SendMessage (Allow on aws:RequestedRegion us-west-2)", lambda: sqs.send_message(QueueUrl=queue, MessageBody="m"))
        self.denied("DeleteQueue (Deny on aws:RequestedRegion us-west-2)", lambda: sqs.delete_queue(QueueUrl=queue))
        trust = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
        self.allowed(
            "CreateRole with the boundary",
            lambda: iam.create_role(RoleName=f"r-{n}-a", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary),
        )
        self.denied("CreateRole without it", lambda: iam.create_role(RoleName=f"r-{n}-b", AssumeRolePolicyDocument=trust))


if __name__ == "__main__":
    unittest.main()
