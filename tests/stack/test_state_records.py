"""The state machine's JSON and the typed records the handlers read it with (model/state.py).

Every path the ASL reads from a record (``$.upload.table_id``, ``$.status.wait_seconds``, ...) and
every field InitPublish starts the progress with must be a field of that record, and every
ResultPath that stores a record must be where ExecutionState reads it: a renamed field fails
here, not in the middle of an execution.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from stacktemplate import ASL as ASL_FILE

from snapcdc.model import state
from snapcdc.model.contract import TableConfig

# The record each name holds, at the top of the execution's state or of a RunQueries item.
RECORDS = {
    "upload": state.Upload,
    "plan": state.Plan,
    "status": state.QueryStatus,
    "query": state.Statement,
    "publish": state.PublishProgress,
    "failure": state.Failure,
    "error": state.CaughtError,
    "resume": state.ResumeRequest,
}
ASL = json.loads(ASL_FILE.read_text())
PATH = re.compile(r"\$\.([A-Za-z_]+)\.([A-Za-z_]+)")


def fields(record: type) -> set[str]:
    return {f.name for f in dataclasses.fields(record)}


def strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def states(definition):
    for name, spec in definition["States"].items():
        yield name, spec
        if "ItemProcessor" in spec:
            yield from states(spec["ItemProcessor"])


def test_every_path_the_asl_reads_from_a_record_is_one_of_its_fields():
    text = json.dumps(ASL)
    read = {(m.group(1), m.group(2)) for m in PATH.finditer(text) if m.group(1) in RECORDS}
    assert ("upload", "lock_expires_at") in read and ("status", "wait_seconds") in read
    unknown = sorted((name, key) for name, key in read if key not in fields(RECORDS[name]))
    assert unknown == []


def test_the_records_are_stored_where_the_execution_state_reads_them():
    stored = {
        spec["ResultPath"].removeprefix("$.")
        for _, spec in states(ASL)
        if isinstance(spec.get("ResultPath"), str) and spec["ResultPath"].count(".") == 1
    }
    for name in ("upload", "plan", "queries", "publish", "error"):
        assert name in stored
        assert name in fields(state.ExecutionState)


def test_init_publish_starts_the_progress_with_its_fields():
    start = ASL["States"]["InitPublish"]["Result"]
    assert set(start) <= fields(state.PublishProgress)
    assert state.PublishProgress.from_dict(start) == state.PublishProgress()


def test_a_record_round_trips_and_leaves_absent_fields_out():
    upload = {"table_id": "t/x", "key": "t/x/V1/a.csv.gz", "outcome": "part"}
    assert state.Upload.from_dict(upload).to_dict() == upload
    plan = {
        "action": "first_load",
        "reason": "r",
        "queries": [{"name": "check_export", "kind": "check", "sql": "SELECT 1"}],
        "schema": {"columns": ["id", "v"], "key": ["id"]},
        "config": TableConfig().to_dict(),
        "files": ["s3://b/t/x/V1/a.csv.gz"],
    }
    assert state.Plan.from_dict(plan).to_dict() == plan
    status = {"name": "delta", "kind": "ops", "query_id": "q", "check": {"row_count": 3}}
    assert state.QueryStatus.from_dict(status).to_dict() == {**status, "bytes_scanned": 0}


@pytest.mark.parametrize(
    ("record", "data", "message"),
    [
        (state.Upload, {"key": "k"}, "upload {'key': 'k'} has no 'table_id'"),
        (state.QueryStatus, {"name": "d", "kind": "ops"}, "has no 'query_id'"),
        (state.Plan, ["skip"], "plan must be a JSON object, got list"),
    ],
)
def test_a_record_missing_what_it_needs_is_refused_naming_it(record, data, message):
    with pytest.raises(state.StateError, match=re.escape(message)):
        record.from_dict(data)


def test_an_approve_execution_input_still_names_its_upload():
    """snapcdc approve starts with ``{"resume", "upload": {table_id, sk}}``: not a full upload,
    but what ExecutionEnded / MarkFailed need to find the record."""
    ref = {"table_id": "t/x", "sk": "upload#t/x/V1/a.csv.gz#0A"}
    parsed = state.ExecutionState.readable_parts(
        {"resume": {"action": "approve", **ref}, "upload": ref}
    )
    assert parsed.upload is None
    assert (parsed.resume.table_id, parsed.resume.sk) == (ref["table_id"], ref["sk"])
