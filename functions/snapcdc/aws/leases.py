"""The per-table lock's lease (its time stamps written as ``snapcdc.model.times`` writes them).

The lock is taken by the state machine itself (DynamoDB ``putItem`` integration) with the
condition ``attribute_not_exists(lock_id) OR expires_at < :now OR held_by = :me``, where
``:now`` is ``$$.State.EnteredTime`` of that attempt. Step Functions cannot do date arithmetic,
so the expiry is computed here, at registration: ``registered_at + LockExpirySeconds``.

Lease semantics: a lock protects its holder for LockExpirySeconds after the holder's upload was
registered. Choose it above the state machine's TimeoutSeconds and a live execution's lock can
never be taken over; an execution that died without releasing (aborted, timed out) blocks its
table until the lease ends, then the next version takes the lock over.

The expiry is written with whole seconds and a ``Z`` (``2020-12-30T10:00:00Z``). Step Functions
writes ``EnteredTime`` with fractions (``...:00.123Z``; the local emulation writes
``...:00.123456+00:00``). Compared as strings, the two agree with the instants down to the second:
within the same second ``Z`` sorts after ``.`` so the lock counts as not yet expired.

>>> lease_expiry(datetime(2020, 12, 30, 10, 0, 0, 500000, tzinfo=UTC), 60)
'2020-12-30T10:01:00Z'
>>> expires = lease_expiry(datetime(2020, 12, 30, 10, 0, tzinfo=UTC), 60)
>>> expires < "2020-12-30T10:01:00.999Z", expires < "2020-12-30T10:01:00.999999+00:00"
(False, False)
>>> expires < "2020-12-30T10:01:01.000Z", expires < "2020-12-30T10:01:01.000001+00:00"
(True, True)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from snapcdc.aws.clients import client
from snapcdc.model.times import iso as iso  # re-exported: the handlers' clock and time format
from snapcdc.model.times import utc_now as utc_now


def lease_expiry(registered_at: datetime, seconds: int) -> str:
    return (registered_at.astimezone(UTC) + timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def lock_holder(lock_table: str, table_id: str) -> dict[str, Any] | None:
    """The lock item of a table (``held_by``, ``expires_at``, ...) or None when it is free."""
    item = (
        client("dynamodb")
        .get_item(TableName=lock_table, Key={"lock_id": {"S": table_id}}, ConsistentRead=True)
        .get("Item")
    )
    return {k: next(iter(v.values())) for k, v in item.items()} if item else None


def release_lock(lock_table: str, table_id: str, holder: str) -> bool:
    """Delete the table's lock if ``holder`` (an execution ARN) still holds it, as the state
    machine's ReleaseLock does; False when it is free or held by another execution."""
    try:
        client("dynamodb").delete_item(
            TableName=lock_table,
            Key={"lock_id": {"S": table_id}},
            ConditionExpression="held_by = :me",
            ExpressionAttributeValues={":me": {"S": holder}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def take_lock(
    lock_table: str, table_id: str, holder: str, expires_at: str, now: str, **extra: str
) -> dict[str, Any] | None:
    """Take the table's lock as the state machine's Lock does, for ``holder``; None when taken,
    else the lock item that holds it (``held_by``, ``expires_at``, ...).

    The condition is the Lock state's (free, or its lease ended before ``now``), so a pipeline
    execution and a verify never hold one table at once.
    """
    item = {"lock_id": table_id, "held_by": holder, "expires_at": expires_at, **extra}
    try:
        client("dynamodb").put_item(
            TableName=lock_table,
            Item={name: {"S": value} for name, value in item.items()},
            ConditionExpression="attribute_not_exists(lock_id) OR expires_at < :now",
            ExpressionAttributeValues={":now": {"S": now}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            old = exc.response.get("Item") or {}
            return {k: next(iter(v.values())) for k, v in old.items()} or {"lock_id": table_id}
        raise
    return None
