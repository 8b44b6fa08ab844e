"""Identity-based IAM policy evaluation, as AWS documents it for a role in its own account.

- Every request starts implicitly denied; an applicable ``Allow`` allows it; an applicable
  ``Deny`` in any policy overrides every ``Allow`` (explicit deny).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html
- A statement applies when its ``Action`` matches (or its ``NotAction`` does not) and its
  ``Resource`` matches (or its ``NotResource`` does not). In both, ``*`` matches any run of
  characters and ``?`` exactly one; action names are case-insensitive, resource ARNs are not.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html

moto ships an evaluator (``moto.iam.access_control.IAMPolicy``) but it is not good enough to
stand in for AWS here: it reads ``?`` and ``.`` in patterns as regular-expression syntax, matches
actions case-sensitively, treats a ``NotResource`` statement as matching every resource, and turns
an ``Allow`` whose condition does not hold into a deny. Conditions are evaluated only for
``StringEquals``, on the resource-account keys (``aws:ResourceAccount``, ``s3:ResourceAccount``:
the account that owns the resource, which Lambda's S3 on-failure destination asks policies to pin,
https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceaccount)
and on the request keys the caller passes in ``context`` (``cloudwatch:namespace``, the only way
to scope PutMetricData, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html);
condition key names are case-insensitive. A statement with any other condition, a policy
variable or a ``Principal`` is refused with an error rather than guessed.

>>> doc = {"Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}]}
>>> evaluate([doc], "s3:GetObject", "arn:aws:s3:::b/k").name
'ALLOW'
>>> evaluate([doc], "s3:PutObject", "arn:aws:s3:::b/k").name
'IMPLICIT_DENY'
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any


class Decision(enum.Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"


class UnsupportedPolicy(ValueError):
    """A policy uses an element the emulation does not evaluate (it refuses to guess)."""


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    if "${" in text:
        raise UnsupportedPolicy(f"policy variables are not emulated: {text!r}")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` one character.

    >>> matches("arn:aws:s3:::b/a?c", "arn:aws:s3:::b/abc"), matches("a?c", "ac")
    (True, False)
    >>> matches("arn:aws:s3:::b.c/*", "arn:aws:s3:::bxc/k")
    False
    """
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _values(statement: Mapping[str, Any], key: str) -> list[str]:
    value = statement[key]
    values = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in values):
        raise UnsupportedPolicy(f"{key} must be a string or a list of strings: {value!r}")
    return values


def _element_applies(
    statement: Mapping[str, Any], name: str, value: str, ignore_case: bool
) -> bool:
    positive, negative = name, f"Not{name}"
    if (positive in statement) == (negative in statement):
        raise UnsupportedPolicy(f"a statement needs exactly one of {positive} and {negative}")
    key = positive if positive in statement else negative
    hit = any(matches(p, value, ignore_case=ignore_case) for p in _values(statement, key))
    return hit if key == positive else not hit


# Condition keys this evaluator knows, each with how its value follows from the request.
RESOURCE_ACCOUNT_KEYS = ("aws:resourceaccount", "s3:resourceaccount")


def resource_account(resource: str, account: str) -> str:
    """The account owning ``resource``: the ARN's account field, or ``account`` where the ARN has
    none (S3 bucket and object ARNs; every emulated bucket belongs to the emulated account).

    >>> resource_account("arn:aws:s3:::b/k", "111122223333")
    '111122223333'
    >>> resource_account("arn:aws:dynamodb:us-east-1:444455556666:table/t", "111122223333")
    '444455556666'
    """
    parts = resource.split(":", 5)
    return parts[4] if len(parts) > 4 and parts[4] else account


def condition_holds(
    statement: Mapping[str, Any],
    resource: str,
    account: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """Whether the statement's ``Condition`` (if any) holds for a request on ``resource`` whose
    request condition keys are ``context`` (lowercase names)."""
    condition = statement.get("Condition")
    if condition is None:
        return True
    if not isinstance(condition, Mapping) or set(condition) != {"StringEquals"}:
        raise UnsupportedPolicy(
            f"Condition in an identity-based policy is not emulated: {statement!r}"
        )
    for key, expected in condition["StringEquals"].items():
        name = key.lower()
        if name in RESOURCE_ACCOUNT_KEYS:
            actual = resource_account(resource, account)
        elif context is not None and name in context:
            actual = context[name]
        else:
            raise UnsupportedPolicy(f"condition key {key!r} is not emulated: {statement!r}")
        values = [expected] if isinstance(expected, str) else list(expected)
        if actual not in values:
            return False
    return True


def statement_applies(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    account: str = "",
    context: Mapping[str, str] | None = None,
) -> bool:
    """Whether one identity-policy statement covers ``action`` on ``resource`` for a principal of
    ``account`` (``context``: the request's condition keys)."""
    for unsupported in ("Principal", "NotPrincipal"):
        if unsupported in statement:
            raise UnsupportedPolicy(
                f"{unsupported} in an identity-based policy is not emulated: {statement!r}"
            )
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise UnsupportedPolicy(f"Effect must be Allow or Deny: {statement!r}")
    return (
        _element_applies(statement, "Action", action, True)
        and _element_applies(statement, "Resource", resource, False)
        and condition_holds(statement, resource, account, context)
    )


def statements(document: Mapping[str, Any] | str) -> list[Mapping[str, Any]]:
    """The statements of a policy document (a JSON string or already parsed)."""
    parsed = json.loads(document) if isinstance(document, str) else document
    found = parsed.get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def evaluate(
    documents: Iterable[Mapping[str, Any] | str],
    action: str,
    resource: str,
    account: str = "",
    context: Mapping[str, str] | None = None,
) -> Decision:
    """The decision of the identity-based policies of a principal of ``account`` for one request
    (``context``: its condition keys, lowercase names)."""
    allowed = False
    for document in documents:
        for statement in statements(document):
            if statement_applies(statement, action, resource, account, context):
                if statement["Effect"] == "Deny":
                    return Decision.EXPLICIT_DENY
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
