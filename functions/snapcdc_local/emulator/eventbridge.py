"""S3 -> EventBridge -> Step Functions, as AWS delivers it.

moto's S3 sends a rough EventBridge event (numeric ``time``, fixed ``sequencer``) and its
EventBridge cannot target Step Functions. :class:`EventBridgeBridge` takes over that one step:
on every object creation or deletion in a bucket whose notification configuration enables
EventBridge, it builds the event exactly as S3 sends it, matches it against every enabled rule
on the default bus (the rules, patterns and targets are the ones the stack created), shapes the
target's input (``Input``, ``InputPath`` or ``InputTransformer``) and calls ``StartExecution``
without a name, like EventBridge. :meth:`EventBridgeBridge.put_event` takes any other event
(Step Functions' status changes come that way, see :mod:`.stepfunctions`). A Lambda target is
invoked asynchronously, as EventBridge invokes it, on a thread of its own that
:meth:`EventBridgeBridge.wait_idle` waits for. Targets of other kinds go to moto's own delivery.

>>> event = {"detail": {"object": {"key": "t/x/v1/a.csv.gz", "size": 3}}}
>>> transform_input({"InputPathsMap": {"k": "$.detail.object.key", "n": "$.detail.object.size"},
...                  "InputTemplate": '{"key": "<k>", "size": <n>}'}, event, {})
'{"key": "t/x/v1/a.csv.gz", "size": 3}'
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import logging
import re
import secrets
import string
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from snapcdc_local.emulator import iam

log = logging.getLogger(__name__)

# S3 notification event name (moto's) -> EventBridge detail-type and reason (AWS's).
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html
_DETAIL = {
    "s3:ObjectCreated:Put": ("Object Created", "PutObject"),
    "s3:ObjectCreated:Post": ("Object Created", "POST Object"),
    "s3:ObjectCreated:Copy": ("Object Created", "CopyObject"),
    "s3:ObjectCreated:CompleteMultipartUpload": ("Object Created", "CompleteMultipartUpload"),
    "s3:ObjectRemoved:Delete": ("Object Deleted", "DeleteObject"),
    "s3:ObjectRemoved:DeleteMarkerCreated": ("Object Deleted", "DeleteObject"),
}


@dataclass
class Delivery:
    """One event delivered to one target (kept for tests and the run's bookkeeping)."""

    event: dict[str, Any]
    rule: str
    target_arn: str
    input: str | None = None
    execution_arn: str | None = None
    error: str | None = None

    @property
    def object_key(self) -> str | None:
        """The S3 object the event is about; None for any other event (a Step Functions
        status change, say, which the same bus delivers)."""
        if self.event.get("source") != "aws.s3":
            return None
        return ((self.event.get("detail") or {}).get("object") or {}).get("key")


@dataclass
class EventBridgeBridge:
    """Delivers S3 events to the targets of matching rules; see the module docstring."""

    deliveries: list[Delivery] = field(default_factory=list)
    _sequencer: Iterator[int] = field(default_factory=lambda: itertools.count(0x617F08299329D189))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no asynchronous delivery (a Lambda target's invocation) is running."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @contextmanager
    def installed(self) -> Iterator[EventBridgeBridge]:
        """Replace moto S3's EventBridge delivery with :meth:`on_s3_event` while the block runs."""
        bridge = self

        def send(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
            bridge.on_s3_event(account_id, bucket, event_name, key)

        with mock.patch("moto.s3.notifications._send_event_bridge_message", send):
            yield self

    def deliveries_for(self, key: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.object_key == key]

    # -- the event -----------------------------------------------------------------------

    def s3_event(
        self, account_id: str, bucket: Any, event_name: str, key: Any
    ) -> dict[str, Any] | None:
        """The EventBridge event S3 sends for ``event_name`` on ``key`` (None if S3 sends none)."""
        if event_name not in _DETAIL:
            return None
        detail_type, reason = _DETAIL[event_name]
        obj: dict[str, Any] = {"key": key.name}
        if detail_type == "Object Created":
            obj["size"] = key.size
            obj["etag"] = key.etag.strip('"')
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null" and bucket.is_versioned:
            obj["version-id"] = version_id
        with self._lock:
            obj["sequencer"] = format(next(self._sequencer), "X")
        detail: dict[str, Any] = {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": obj,
            "request-id": "".join(
                secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16)
            ),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        }
        if detail_type == "Object Deleted":
            detail["deletion-type"] = "Permanently Deleted"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": account_id,
            "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": bucket.region_name,
            "resources": [f"arn:aws:s3:::{bucket.name}"],
            "detail": detail,
        }

    # -- delivery ------------------------------------------------------------------------

    def on_s3_event(self, account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        """Called by moto's S3 for every notification of a bucket with EventBridge enabled."""
        event = self.s3_event(account_id, bucket, event_name, key)
        if event is not None:
            self.put_event(event)

    def put_event(self, event: dict[str, Any]) -> list[Delivery]:
        """Deliver ``event`` on the default bus of its account and region."""
        from moto.events.models import events_backends

        backend = events_backends[event["account"]][event["region"]]
        bus = backend.event_buses.get("default")
        delivered = []
        for rule in list(bus.rules.values()) if bus else []:
            # A schedule rule has no event pattern and matches no event: it only fires on its
            # schedule (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html),
            # which the emulation does not run (tests invoke its target with a scheduled event).
            if rule.scheduled_expression or rule.state != "ENABLED":
                continue
            if not rule.event_pattern.matches_event(event):
                continue
            for target in rule.targets:
                delivered.append(self._deliver(event, rule, target))
        return delivered

    def _deliver(self, event: dict[str, Any], rule: Any, target: dict[str, Any]) -> Delivery:
        delivery = Delivery(event=event, rule=rule.name, target_arn=target["Arn"])
        try:
            delivery.input = target_input(target, event, rule)
            if ":states:" in target["Arn"] and ":stateMachine:" in target["Arn"]:
                # "The role needs states:StartExecution on the state machine":
                # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-target-sfn.html
                with iam.acting_as(target.get("RoleArn"), f"events-{rule.name}"):
                    delivery.execution_arn = start_execution(
                        target["Arn"], delivery.input, event["region"]
                    )
            elif ":lambda:" in target["Arn"] and ":function:" in target["Arn"]:
                self._invoke_async(delivery, event["region"])
            else:
                # Not ours to emulate: moto's own delivery for this single target.
                single = copy.copy(rule)
                single.targets = [target]
                single.send_to_targets(event)
        except Exception as exc:  # EventBridge never fails the S3 request; record it instead
            delivery.error = f"{type(exc).__name__}: {exc}"
            log.error(
                "EventBridge rule %s -> %s failed: %s", rule.name, target["Arn"], delivery.error
            )
            dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
            if dead_letter:
                try:
                    send_to_dead_letter_queue(dead_letter, event, rule, target, exc)
                except Exception:  # lost, as in AWS when the DLQ is unusable; keep the log
                    log.exception("could not send the event to %s", dead_letter)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def _invoke_async(self, delivery: Delivery, region: str) -> None:
        """EventBridge invokes a Lambda target asynchronously: the event is accepted, the
        function runs later; its errors are the function's (Lambda's asynchronous retries and
        destinations, not emulated: logged and kept in ``delivery.error``), not the rule's."""

        def run() -> None:
            try:
                # EventBridge itself invokes the function, authorised by the function's
                # resource-based policy (not emulated), never by the caller that emitted the
                # event (this thread inherits, say, the state machine's role).
                with iam.acting(None):
                    delivery.error = invoke_function(
                        delivery.target_arn, delivery.input or "", region
                    )
            except Exception as exc:  # recorded like a failed delivery
                delivery.error = f"{type(exc).__name__}: {exc}"
            if delivery.error:
                log.error("Lambda target %s failed: %s", delivery.target_arn, delivery.error)
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

        with self._idle:
            self._in_flight += 1
        threading.Thread(target=run, name="eventbridge-lambda", daemon=True).start()


def invoke_function(function_arn: str, payload: str, region: str) -> str | None:
    """Invoke a Lambda target with the event as its payload; the function's error, if any."""
    import boto3

    response = boto3.client("lambda", region_name=region).invoke(
        FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload.encode()
    )
    if response.get("FunctionError"):
        return response["Payload"].read().decode()
    return None


def send_to_dead_letter_queue(
    queue_arn: str, event: dict[str, Any], rule: Any, target: dict[str, Any], exc: Exception
) -> None:
    """What EventBridge sends to a target's dead-letter queue: the event, the reason as attributes.

    (No retries first: the emulator's failures are not transient, so ``RetryPolicy`` is moot.)
    """
    import boto3

    _, _, _, region, account, name = queue_arn.split(":")
    sqs = boto3.client("sqs", region_name=region)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
    attributes = {
        "RULE_ARN": getattr(rule, "arn", ""),
        "TARGET_ARN": target["Arn"],
        "ERROR_CODE": code,
        "ERROR_MESSAGE": str(exc)[:1000],
    }
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(event),
        MessageAttributes={
            k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()
        },
    )


def start_execution(state_machine_arn: str, execution_input: str, region: str) -> str:
    """``StartExecution`` as EventBridge calls it: no name, the target's input."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name=region)
    return sfn.start_execution(stateMachineArn=state_machine_arn, input=execution_input)[
        "executionArn"
    ]


def target_input(target: dict[str, Any], event: dict[str, Any], rule: Any) -> str:
    """The text a target receives: the event, ``Input``, ``InputPath`` or ``InputTransformer``."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(json_path(event, target["InputPath"]))
    if target.get("InputTransformer"):
        reserved = {
            "aws.events.rule-arn": getattr(rule, "arn", ""),
            "aws.events.rule-name": getattr(rule, "name", ""),
            "aws.events.event.ingestion-time": event["time"],
            "aws.events.event.json": event,
        }
        return transform_input(target["InputTransformer"], event, reserved)
    return json.dumps(event)


_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def json_path(document: Any, path: str) -> Any:
    """Resolve the JSONPath subset EventBridge accepts in ``InputPath``/``InputPathsMap``.

    >>> json_path({"a": {"b": [1, {"c": 2}]}}, "$.a.b[1].c")
    2
    >>> json_path({"a": 1}, "$.x") is None
    True
    """
    if path == "$":
        return document
    if not path.startswith("$"):
        raise ValueError(f"invalid JSONPath {path!r}: must start with '$'")
    position, value = 1, document
    for match in _PATH_PART.finditer(path, 1):
        if match.start() != position:
            raise ValueError(f"unsupported JSONPath {path!r}")
        position = match.end()
        name, index = match.groups()
        if name is not None:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            value = (
                value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            )
        if value is None:
            return None
    if position != len(path):
        raise ValueError(f"unsupported JSONPath {path!r}")
    return value


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def transform_input(
    transformer: dict[str, Any], event: dict[str, Any], reserved: dict[str, Any]
) -> str:
    """Apply an ``InputTransformer``: ``<name>`` placeholders filled from the paths map.

    Inside a JSON string a value is inserted as text; outside, as a JSON value (strings
    quoted), which is how EventBridge treats JSON templates.
    """
    values = dict(reserved)
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        values[name] = json_path(event, path)
    template = transformer.get("InputTemplate")
    if template is None:
        return json.dumps(event)
    out, in_string, i = [], False, 0
    while i < len(template):
        ch = template[i]
        match = _PLACEHOLDER.match(template, i) if ch == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                text = value if isinstance(value, str) else json.dumps(value)
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value))
            i = match.end()
            continue
        if ch == '"' and (i == 0 or template[i - 1] != "\\"):
            in_string = not in_string
        out.append(ch)
        i += 1
    return "".join(out)
