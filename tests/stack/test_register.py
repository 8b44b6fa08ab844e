"""Register: valid keys, bad keys (a FAILED record naming the problem), duplicate events."""

from __future__ import annotations

from harness import s3_event

from snapcdc.registry import find_upload, list_uploads

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


def test_url_encoded_key_is_decoded_before_validation(aws):
    event = s3_event("imports", "tenant/my+table/v1/export.csv.gz", 10, "e")

    upload = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    assert upload["outcome"] == "rejected"
    assert upload["key"] == "tenant/my table/v1/export.csv.gz"
    assert "invalid table 'my table'" in upload["error"]
    assert list_uploads("tenant/my table")[0]["raw_key"] == "tenant/my+table/v1/export.csv.gz"


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
