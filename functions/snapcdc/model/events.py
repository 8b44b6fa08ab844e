"""S3 "Object Created" events as EventBridge delivers them, and the execution name for one.

The key is used exactly as the event carries it, never URL-decoded. S3 documents URL-encoding
for its classic notifications ("red flower.jpg" becomes "red+flower.jpg",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html); the
EventBridge message reference (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)
shows ``detail.object.key`` without saying either way. The pipeline's outcome does not depend on
the answer: a key that follows the export contract only holds letters, digits and ``_ - . /``,
which URL-encoding leaves as they are, and any key holding ``+``, ``%``, a space or another
character outside the contract fails the contract check under the key as delivered. Decoding
would turn ``V%31`` into ``V1``, the key of a different object that may well exist.

>>> ev = object_event({"id": "e1", "time": "2020-12-30T10:00:00Z", "detail": {
...     "bucket": {"name": "imports"},
...     "object": {"key": "tenant/t/V1/a+b.csv.gz", "size": 79, "etag": "x", "sequencer": "0A"}}})
>>> (ev.detail.bucket.name, ev.raw_key, ev.detail.object.key, ev.object_sequencer)
('imports', 'tenant/t/V1/a+b.csv.gz', 'tenant/t/V1/a b.csv.gz', '0A')
>>> parts = parse_key_parts("tenant/test_table/20201230_V0001/x.csv.gz")
>>> execution_name(parts, "0055AED6DCD90281E5")
'tenant-test_table-20201230_V0001-0055AED6DCD90281E5'
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent


class EventError(ValueError):
    """The input is not an S3 Object Created event."""


class ObjectCreatedEvent(S3EventBridgeNotificationEvent):
    """Powertools' EventBridge S3 event, with the two readings snapcdc needs that it lacks.

    Powertools' ``detail.object.key`` is URL-decoded (``unquote_plus``); snapcdc uses the key as
    delivered (see the module docstring), so it reads ``raw_key`` only.
    """

    @property
    def raw_key(self) -> str:
        return str(self.detail.object["key"])

    @property
    def object_sequencer(self) -> str:
        """Every S3 object event has a sequencer; a hand-made one falls back to the event id."""
        return str(self.detail.object.get("sequencer") or self.get("id") or "none")


def object_event(event: Any) -> ObjectCreatedEvent:
    """The EventBridge S3 event as a Powertools data class; EventError if it names no object."""
    try:
        event["detail"]["object"]["key"]
        event["detail"]["bucket"]["name"]
    except (KeyError, TypeError):
        raise EventError(f"not an S3 Object Created event: {str(event)[:200]}") from None
    return ObjectCreatedEvent(event)


def parse_key_parts(key: str) -> tuple[str, str, str, str]:
    """``tenant, table, version, file`` of a key without validating them (for records of bad keys).

    >>> parse_key_parts("only/two")
    ('only', 'two', '', '')
    """
    parts = key.split("/", 3)
    parts += [""] * (4 - len(parts))
    return parts[0], parts[1], parts[2], parts[3]


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
MAX_EXECUTION_NAME = 80


def execution_name(parts: tuple[str, str, str, str], sequencer: str) -> str:
    """A readable Step Functions execution name, unique per object event.

    Only characters Step Functions accepts; longer than 80 characters it is cut and ends in a
    hash of the full name, so it stays unique and deterministic (a redelivered event maps to the
    same name, which Step Functions then refuses as a duplicate).
    """
    tenant, table, version, _ = parts
    name = "-".join(_NAME_UNSAFE.sub("_", p) or "_" for p in (tenant, table, version, sequencer))
    if len(name) <= MAX_EXECUTION_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_EXECUTION_NAME - 17]}-{digest}"
