"""Multi-part versions (``complete_on: "manifest"``): Register and Plan on the emulation.

A part registers nothing; the manifest registers the version; Plan reads exactly the listed
parts, after checking each exists (with its size) and that no unlisted part lies beside them;
the manifest's ``rows`` is judged with the export check.
"""

from __future__ import annotations

import json
import re

import pytest
from harness import s3_event

from snapcdc.aws.registry import list_uploads
from snapcdc.model.contract import ContractError
from snapcdc.model.errors import ExportCheckFailed
from snapcdc.sql.queries import CHECK_COLUMNS

EXEC = "arn:aws:states:us-east-1:123456789012:execution:pipeline:manifest"
PREFIX = "tenant/t/V1/"


def configure(aws, **config):
    aws.s3.put_object(Bucket="imports", Key="tenant/t/_table.json", Body=json.dumps(config))


def put_part(aws, name: str, text: str) -> dict:
    return aws.put_export(PREFIX + name, text)


def put_manifest(aws, manifest) -> dict:
    body = (manifest if isinstance(manifest, str) else json.dumps(manifest)).encode()
    put = aws.s3.put_object(Bucket="imports", Key=PREFIX + "_manifest.json", Body=body)
    return s3_event("imports", PREFIX + "_manifest.json", len(body), put["ETag"].strip('"'))


def register(aws, event):
    return aws.invoke("register", {"event": event, "execution_arn": EXEC})


def plan(aws, upload):
    return aws.invoke("plan", {"upload": upload, "execution_arn": EXEC})


def test_a_part_registers_nothing_and_the_manifest_registers_the_version(aws):
    configure(aws, complete_on="manifest")

    part = register(aws, put_part(aws, "part-0000.csv.gz", "id,v\n1,a\n"))

    assert part["outcome"] == "part"
    assert list_uploads("tenant/t") == []
    upload = register(aws, put_manifest(aws, {"files": ["part-0000.csv.gz"]}))
    assert (upload["outcome"], upload["file"]) == ("registered", "_manifest.json")
    [record] = list_uploads("tenant/t")
    assert record["status"] == "REGISTERED" and record["key"] == PREFIX + "_manifest.json"


def test_a_manifest_for_a_table_completing_on_each_file_fails_saying_which_option(aws):
    upload = register(aws, put_manifest(aws, {"files": ["part-0000.csv.gz"]}))

    assert upload["outcome"] == "rejected"
    assert 'set "complete_on": "manifest" in tenant/t/_table.json' in upload["error"]
    [record] = list_uploads("tenant/t")
    assert record["status"] == "FAILED"


def test_plan_reads_exactly_the_listed_parts(aws):
    configure(aws, complete_on="manifest")
    put_part(aws, "part-0000.csv.gz", "id,v\n1,a\n")
    size = aws.s3.head_object(Bucket="imports", Key=PREFIX + "part-0000.csv.gz")["ContentLength"]
    put_part(aws, "part-0001.csv.gz", "id,v\n2,b\n")
    aws.s3.put_object(Bucket="imports", Key=PREFIX + "part-0002.csv.gz.tmp", Body=b"x")
    aws.s3.put_object(Bucket="imports", Key=PREFIX + "_SUCCESS", Body=b"")
    manifest = {
        "files": [{"name": "part-0000.csv.gz", "size": size}, "part-0001.csv.gz"],
        "rows": 2,
    }
    upload = register(aws, put_manifest(aws, manifest))

    result = plan(aws, upload)

    assert result["action"] == "first_load"
    assert result["files"] == [
        f"s3://imports/{PREFIX}part-0000.csv.gz",
        f"s3://imports/{PREFIX}part-0001.csv.gz",
    ]
    assert result["schema"] == {"columns": ["id", "v"], "key": ["id"]}
    [check] = [q for q in result["queries"] if q["kind"] == "check"]
    assert check["expected_rows"] == 2
    for query in result["queries"][3:]:
        assert f"'s3://imports/{PREFIX}part-0001.csv.gz'" in query["sql"]
        assert ".tmp" not in query["sql"] and "_manifest.json" not in query["sql"]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            {"files": ["part-0000.csv.gz", "part-0001.csv.gz", "part-0002.csv.gz"]},
            "part part-0002.csv.gz is listed but missing",
        ),
        ({"files": ["part-0000.csv.gz"]}, "part part-0001.csv.gz is not listed in the manifest"),
        (
            {"files": [{"name": "part-0000.csv.gz", "size": 3}, "part-0001.csv.gz"]},
            "part part-0000.csv.gz is ",
        ),
        (
            {"files": ["part-0000.csv.gz", "part-0000.csv.gz"]},
            "lists part 'part-0000.csv.gz' twice",
        ),
        ({"files": ["../x/part.csv.gz"]}, "part '../x/part.csv.gz' must be a file name"),
        ({"files": []}, "files must be a non-empty list"),
        ({"files": ["part-0000.csv.gz"], "rows": -1}, "rows must be a non-negative integer"),
        ({"parts": ["part-0000.csv.gz"]}, "unknown field(s) ['parts']"),
        ("{not json", "_manifest.json is not valid JSON"),
    ],
)
def test_a_bad_manifest_or_missing_or_extra_part_fails_the_plan_naming_it(aws, manifest, message):
    configure(aws, complete_on="manifest")
    put_part(aws, "part-0000.csv.gz", "id,v\n1,a\n")
    put_part(aws, "part-0001.csv.gz", "id,v\n2,b\n")
    upload = register(aws, put_manifest(aws, manifest))

    with pytest.raises(ContractError, match=re.escape(message)):
        plan(aws, upload)


def test_parts_with_different_header_rows_fail_naming_the_part(aws):
    configure(aws, complete_on="manifest")
    put_part(aws, "part-0000.csv.gz", "id,v\n1,a\n")
    put_part(aws, "part-0001.csv.gz", "id,w\n2,b\n")
    upload = register(aws, put_manifest(aws, {"files": ["part-0000.csv.gz", "part-0001.csv.gz"]}))

    with pytest.raises(ContractError, match="header row of tenant/t/V1/part-0001.csv.gz is"):
        plan(aws, upload)


def test_a_rows_total_that_does_not_match_fails_the_check_with_both_numbers(aws):
    body = ",".join(f'"{c}"' for c in CHECK_COLUMNS) + "\n"
    body += '"3","0",,"0","0","420","PK1","1950","PK1","131","PK1"\n'
    aws.s3.put_object(Bucket="results", Key="athena/check.csv", Body=body.encode())
    status = {"name": "check_export", "kind": "check", "query_id": "q1",
              "output_location": "s3://results/athena/check.csv"}  # fmt: skip
    query = {"name": "check_export", "kind": "check", "expected_rows": 4}

    with pytest.raises(ExportCheckFailed, match="the export has 3 row"):
        aws.invoke("check", {"status": status, "query": query, "table_id": "t", "version": "V1"})
    with pytest.raises(ExportCheckFailed, match="its manifest says 4"):
        aws.invoke("check", {"status": status, "query": query, "table_id": "t", "version": "V1"})
    query["expected_rows"] = 3
    assert aws.invoke("check", {"status": status, "query": query}) == {"row_count": 3}
