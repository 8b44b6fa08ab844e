"""Register: valid keys, bad keys (a FAILED record naming the problem), duplicate events."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from harness import s3_event

from snapcdc.aws.registry import find_upload, list_uploads
from snapcdc.model.contract import parse_export_key

EXEC = "arn:aws:states:us-east-1:123456789012:execution:pipeline:one"


def test_valid_key_is_registered_with_lease_and_loop_settings(aws):
    event = aws.put_export("tenant/test_table/20201230_V0001/export1.csv.gz", "PK1;a;b;c\n")

    upload = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    assert upload["outcome"] == "registered"
    assert (upload["table_id"], upload["version"], upload["file"]) == (
        "tenant/test_table",
        "20201230_V0001",
        "export1.csv.gz",
    )
    assert upload["lock_expires_at"] > upload["registered_at"]
    assert upload["lock_expires_at"].endswith("Z") and "." not in upload["lock_expires_at"]
    assert upload["lock_retry_seconds"] == 0 and upload["query_poll_seconds"] == 0
    record = find_upload("tenant/test_table", upload["key"], event["detail"]["object"]["sequencer"])
    assert record["status"] == "REGISTERED"
    assert record["execution_arn"] == EXEC
    assert record["size"] == event["detail"]["object"]["size"]


def test_invalid_key_gets_a_failed_record_with_the_contract_error(aws):
    event = aws.put_export("Tenant/test_table/20201230_V0001/export1.csv.gz", "x\n")

    upload = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    assert upload["outcome"] == "rejected"
    assert "invalid tenant 'Tenant'" in upload["error"]
    [record] = list_uploads("Tenant/test_table")
    assert record["status"] == "FAILED"
    assert record["error"].startswith("ContractError: invalid tenant 'Tenant'")


@pytest.mark.parametrize(
    ("delivered", "problem"),
    [
        ("tenant/my+table/v1/export.csv.gz", "invalid table 'my+table'"),
        ("tenant/my table/v1/export.csv.gz", "invalid table 'my table'"),
        ("tenant/my%20table/v1/export.csv.gz", "invalid table 'my%20table'"),
        # decoded, this would be tenant/t/v1/export.csv.gz, an object that exists
        ("tenant/t/v%31/export.csv.gz", "invalid version 'v%31'"),
    ],
)
def test_a_key_outside_the_contract_fails_under_the_key_as_delivered(aws, delivered, problem):
    """EventBridge's S3 event reference does not say whether ``detail.object.key`` is
    URL-encoded: the key is never decoded, so ``+``, ``%`` or a space fails, naming the key
    the event carried, and never becomes the key of another object."""
    aws.put_export("tenant/t/v1/export.csv.gz", "PK1;a\n")
    event = s3_event("imports", delivered, 10, "e")

    upload = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    assert upload["outcome"] == "rejected"
    assert upload["key"] == delivered
    assert problem in upload["error"]
    assert f"(object key {delivered!r}, as the event delivered it)" in upload["error"]
    [record] = list_uploads("/".join(delivered.split("/")[:2]))
    assert (record["key"], record["raw_key"], record["status"]) == (delivered, delivered, "FAILED")


@pytest.mark.parametrize(
    "key", ["tenant/test_table/20201230_V0001/export1.csv.gz", "a_b/c1/V_x1/part-0.tar.csv.gz"]
)
def test_url_encoding_leaves_contract_keys_as_they_are(key):
    """So the outcome for a valid key is the same whether or not EventBridge encodes it."""
    assert quote_plus(key, safe="/") == key
    parse_export_key(key)


def test_object_in_another_bucket_is_rejected(aws):
    aws.s3.create_bucket(Bucket="elsewhere")
    event = aws.put_export("tenant/t/v1/export.csv.gz", "x\n", bucket="elsewhere")

    upload = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    assert upload["outcome"] == "rejected"
    assert "not the import bucket 'imports'" in upload["error"]


def test_duplicate_event_is_reported_and_changes_nothing(aws):
    event = aws.put_export("tenant/test_table/20201230_V0001/export1.csv.gz", "PK1;a;b;c\n")
    first = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    again = aws.invoke("register", {"event": event, "execution_arn": EXEC + "-dup"})

    assert first["outcome"] == "registered"
    assert again["outcome"] == "duplicate"
    assert again["execution_arn"] == EXEC
    [record] = list_uploads("tenant/test_table")
    assert record["execution_arn"] == EXEC


def test_retry_by_the_same_execution_is_not_a_duplicate(aws):
    event = aws.put_export("tenant/test_table/20201230_V0001/export1.csv.gz", "PK1;a;b;c\n")
    aws.invoke("register", {"event": event, "execution_arn": EXEC})

    again = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    assert again["outcome"] == "registered"


def test_same_key_uploaded_again_is_a_new_upload(aws):
    key = "tenant/test_table/20201230_V0001/export1.csv.gz"
    aws.invoke("register", {"event": aws.put_export(key, "a\n"), "execution_arn": EXEC})

    second = aws.invoke(
        "register", {"event": aws.put_export(key, "b\n"), "execution_arn": EXEC + "2"}
    )

    assert second["outcome"] == "registered"
    assert len(list_uploads("tenant/test_table", key=key)) == 2
