"""Mutation tests of scripts/check_policies.py on the documents the provisioner
derives for a stack (POLICIES: what `provisioner policies --json` printed):
they pass as derived, and each kind of mistake AWS would not honour fails,
naming the policy, the statement, the action and what is wrong."""

import copy
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import check_policies  # noqa: E402

REF = check_policies.Reference()


def load():
    with open(os.environ.get("POLICIES", "target/policies/prod.json")) as f:
        return json.load(f)


def statement(docs, address, action, policy="inline"):
    """The document of `address` and its statement that allows `action`."""
    for d in docs:
        if d["address"] == address and d["policy"].startswith(policy):
            for st in d["document"]["Statement"]:
                if action in st["Action"]:
                    return d, st
    raise AssertionError(f"{address} has no statement allowing {action}")


class Mutations(unittest.TestCase):
    def setUp(self):
        self.docs = load()

    def findings(self, docs):
        return [str(f) for f in check_policies.check_documents(REF, docs)]

    def test_the_derived_documents_pass(self):
        self.assertEqual(self.findings(self.docs), [])
        kinds = {d["type"] for d in self.docs}
        self.assertEqual(kinds, {"identity", "trust", "resource"})
        roles = {d["address"] for d in self.docs}
        for role in ["role.worker", "role.http", "role.github_plan", "role.github_apply", "role.github_preview"]:
            self.assertIn(role, roles)

    def test_a_misspelt_action_fails(self):
        docs = copy.deepcopy(self.docs)
        d, st = statement(docs, "role.worker", "sqs:ReceiveMessage")
        st["Action"] = [a.replace("ReceiveMessage", "RecieveMessage") for a in st["Action"]]
        found = self.findings(docs)
        self.assertEqual(len(found), 1, found)
        self.assertIn("role.worker (", found[0])
        self.assertIn(f"statement {st['Sid']}", found[0])
        self.assertIn("sqs:RecieveMessage: the service 'sqs' has no such action", found[0])

        d, st = statement(docs, "role.http", "bedrock:InvokeModel")
        st["Action"] = ["bedrok:InvokeModel"]
        self.assertTrue(any("no AWS service has the prefix 'bedrok'" in f for f in self.findings(docs)))

    def test_an_action_on_the_wrong_resource_type_fails(self):
        # The finding that started this: DescribeLogGroups named on log-group ARNs.
        docs = copy.deepcopy(self.docs)
        d, st = statement(docs, "role.github_plan", "logs:DescribeLogGroups")
        st["Resource"] = ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/couch-prod-worker:*"]
        st.pop("Condition", None)
        found = self.findings(docs)
        self.assertEqual(len(found), 1, found)
        self.assertIn('logs:DescribeLogGroups: authorised only on "*"', found[0])
        self.assertIn("role.github_plan", found[0])

        # Objects' actions on the bucket's ARN, and the queue's on the topic's.
        docs = copy.deepcopy(self.docs)
        d, st = statement(docs, "role.worker", "s3:GetObject")
        st["Resource"] = [st["Resource"][0].split("/")[0]]
        found = self.findings(docs)
        self.assertTrue(any("s3:GetObject: Resource arn:aws:s3:::" in f and "fits no resource type" in f for f in found), found)
        docs = copy.deepcopy(self.docs)
        d, st = statement(docs, "role.worker", "sqs:ReceiveMessage")
        st["Resource"] = ["arn:aws:sns:eu-west-1:123456789012:couch-prod-alerts"]
        self.assertTrue(any("sqs:ReceiveMessage: Resource arn:aws:sns" in f for f in self.findings(docs)))

    def test_star_for_an_action_with_resource_types_fails(self):
        docs = copy.deepcopy(self.docs)
        d, st = statement(docs, "role.worker", "s3:PutObject")
        st["Resource"] = ["*"]
        found = self.findings(docs)
        self.assertTrue(any('s3:PutObject: Resource "*", but the action is authorised on resource types' in f for f in found), found)

    def test_an_invalid_condition_key_fails(self):
        docs = copy.deepcopy(self.docs)
        d, st = statement(docs, "role.worker", "s3:ListBucket")
        st["Condition"]["StringLike"] = {"s3:prefixes": st["Condition"]["StringLike"]["s3:prefix"]}
        found = self.findings(docs)
        self.assertEqual(len(found), 1, found)
        self.assertIn("condition key 's3:prefixes' (StringLike) is not valid", found[0])

        # A trust policy may test its own OIDC provider's claims, not another's.
        docs = copy.deepcopy(self.docs)
        d = next(d for d in docs if d["address"] == "role.github_apply" and d["type"] == "trust")
        cond = d["document"]["Statement"][0]["Condition"]["StringEquals"]
        cond["gitlab.com:sub"] = cond.pop("token.actions.githubusercontent.com:sub")
        self.assertTrue(any("gitlab.com:sub" in f for f in self.findings(docs)))

    def test_wildcard_arns_fit_by_what_they_can_name(self):
        fits = check_policies.fits
        self.assertTrue(fits("arn:aws:sqs:eu-west-1:123456789012:couch-pr-*-prompts",
                             "arn:${Partition}:sqs:${Region}:${Account}:${QueueName}"))
        # A log group's `:*` names its streams.
        self.assertTrue(fits("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f:*",
                             "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"))
        # A Region field cannot swallow the path.
        self.assertFalse(fits("arn:aws:apigateway:eu-west-1::/tags/*",
                              "arn:${Partition}:apigateway:${Region}::/apis"))
        self.assertFalse(fits("arn:aws:s3:::bucket", "arn:${Partition}:s3:::${BucketName}/${ObjectName}"))


if __name__ == "__main__":
    unittest.main()
