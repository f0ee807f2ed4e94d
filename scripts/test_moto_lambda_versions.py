"""Tests of the launcher's Lambda version numbers (scripts/moto_server.py,
`_publish_version`): a function's versions are numbered by the highest ever
published plus one, never reusing a deleted version's number, as the Lambda
developer guide documents (configuration-versions.html: "Lambda increments
the version number each time you publish").
  .venv/bin/python -m unittest -v scripts/test_moto_lambda_versions.py
"""

from __future__ import annotations

import io
import json
import sys
import unittest
import uuid
import zipfile
from pathlib import Path
from typing import Any


REGION = "eu-west-1"

# The launcher, on a free port (scripts/launcher_test_server.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from launcher_test_server import Launcher  # noqa: E402

_launcher = Launcher()
setUpModule, tearDownModule = _launcher.module_fixtures()


def client(service: str) -> Any:
    return _launcher.client(service, REGION)


def code(tag: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("bootstrap", f"#!/bin/sh\n# {tag}\n")
    return out.getvalue()


class VersionNumbers(unittest.TestCase):
    def test_a_deleted_versions_number_is_never_published_again(self) -> None:
        iam, lam = client("iam"), client("lambda")
        name = f"fn-{uuid.uuid4().hex[:8]}"
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                               "Action": "sts:AssumeRole"}],
            }),
        )["Role"]["Arn"]
        lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=role,
                            Handler="bootstrap", Code={"ZipFile": code("v0")})

        def publish(tag: str) -> str:
            lam.update_function_code(FunctionName=name, ZipFile=code(tag))
            return str(lam.publish_version(FunctionName=name)["Version"])

        def listed() -> list[str]:
            return [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]

        self.assertEqual([publish("v1"), publish("v2"), publish("v3")], ["1", "2", "3"])
        lam.delete_function(FunctionName=name, Qualifier="1")
        self.assertEqual(publish("v4"), "4")
        # The newest deleted too: its number is still spent.
        lam.delete_function(FunctionName=name, Qualifier="4")
        self.assertEqual(publish("v5"), "5")
        self.assertEqual(listed(), ["$LATEST", "2", "3", "5"])
        # Nothing changed: the last version again, as AWS answers.
        self.assertEqual(str(lam.publish_version(FunctionName=name)["Version"]), "5")


if __name__ == "__main__":
    unittest.main()
