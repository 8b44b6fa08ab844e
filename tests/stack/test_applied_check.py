"""AppliedCheck: a SUCCEEDED version whose ops were not all applied within the stream's maximum
record age is flagged on its registry record and counted in the UnappliedVersions metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3

from snapcdc.aws.leases import iso
from snapcdc.aws.registry import find_record
from snapcdc.steps.applied_check import LAST_BATCH_SECONDS, METRIC_NAME, METRIC_NAMESPACE, watch_key

TABLE_ID = "tenant/test_table"
FINISHED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
MAX_AGE = 86400  # ConsumerMaxRecordAgeSeconds' default, in the functions' environment


def registered(aws, sk, **counts):
    item = {"table_id": {"S": TABLE_ID}, "sk": {"S": sk}, "status": {"S": "SUCCEEDED"}}
    item.update({name: {"N": str(n)} for name, n in counts.items()})
    aws.dynamodb.put_item(TableName="registry", Item=item)


def finish(aws, sk, published):
    """Finish of a version that published ``published`` ops, through the real handler."""
    upload = {"table_id": TABLE_ID, "sk": sk, "version": sk.split("/")[2], "key": sk,
              "sequencer": "0A"}  # fmt: skip
    plan = {"action": "delta", "schema": {"columns": ["id"], "key": ["id"]}, "config": {},
            "location": "", "files": []}  # fmt: skip
    state = {"upload": upload, "plan": plan, "queries": [], "publish": {"records": published}}
    aws.invoke("finish", {"state": state, "execution_arn": "arn:x"})


def scheduled(at):
    """An EventBridge scheduled event as a schedule rule sends it."""
    return {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": iso(at), "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/applied-check"],
            "detail": {}}  # fmt: skip


def metric_values():
    stats = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=METRIC_NAMESPACE,
        MetricName=METRIC_NAME,
        Dimensions=[{"Name": "RegistryTable", "Value": "registry"}],
        StartTime=datetime(2020, 1, 1, tzinfo=UTC),
        EndTime=datetime(2030, 1, 1, tzinfo=UTC),
        Period=60,
        Statistics=["Maximum"],
    )
    return sorted(p["Maximum"] for p in stats["Datapoints"])


def test_a_version_not_all_applied_after_the_maximum_record_age_is_flagged(aws, monkeypatch):
    monkeypatch.setattr("snapcdc.steps.finish.iso", lambda _: iso(FINISHED))  # when Finish ran
    short, full, late = (f"upload#{TABLE_ID}/V{n}/a.csv.gz#0A" for n in (1, 2, 3))
    registered(aws, short, applied=3)  # 2 of 5 never applied
    registered(aws, full, applied=4, stale=1)
    for sk, published in ((short, 5), (full, 5)):
        finish(aws, sk, published)
    # not yet: the maximum record age (and a last batch) has not passed since Finish
    early = FINISHED + timedelta(seconds=MAX_AGE)
    assert aws.invoke("applied_check", scheduled(early)) == {"checked": 0, "unapplied": []}

    registered(aws, late, applied=0)
    monkeypatch.setattr("snapcdc.steps.finish.iso", lambda _: iso(early))
    finish(aws, late, 7)  # finished later: checked by a later run
    after = FINISHED + timedelta(seconds=MAX_AGE + LAST_BATCH_SECONDS + 1)
    assert aws.invoke("applied_check", scheduled(after)) == {"checked": 2, "unapplied": [short]}
    record = find_record(TABLE_ID, short, table_name="registry")
    assert record["unapplied"] == 2
    assert record["unapplied_reason"].startswith("2 of 5 published ops were not applied within")
    assert "unapplied" not in find_record(TABLE_ID, full, table_name="registry")
    # each watch is checked once
    assert aws.invoke("applied_check", scheduled(after)) == {"checked": 0, "unapplied": []}
    much_later = early + timedelta(seconds=MAX_AGE + LAST_BATCH_SECONDS + 1)
    assert aws.invoke("applied_check", scheduled(much_later)) == {
        "checked": 1,
        "unapplied": [late],
    }
    assert metric_values() == [1.0]  # the alarm watches the Maximum; runs of 0 and 1 here
    assert find_record(watch_key(iso(FINISHED), TABLE_ID, short)["table_id"], "x",
                       table_name="registry") is None  # fmt: skip
