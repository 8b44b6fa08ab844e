"""Every case under fixtures/, through pyathena's DB-API against an Athena workgroup.

The same cases, statements and expected ops as ``test_fixture_cases.py``, run the way a user
runs SQL against Athena: the case's objects uploaded to S3, each statement executed with a
pyathena cursor on a workgroup, the check row and the ops fetched back.

Where: by default a workgroup of ``snapcdc local serve`` (started for this module, reached
through AWS_ENDPOINT_URL like any client). Against real Athena when
``SNAPCDC_ATHENA_WORKGROUP`` (a workgroup with an output location, or with
``SNAPCDC_ATHENA_OUTPUT``) and ``SNAPCDC_ATHENA_STAGING`` (an ``s3://bucket/prefix/`` the
fixtures are uploaded to) are set, in ``AWS_REGION``, with the caller's usual credentials;
the Glue database it creates (``snapcdc_fixtures_<random>``) is dropped at the end. Only one of
the two runs: setting the variables is the opt-in.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from test_fixture_cases import CASES, FIXTURES, case_versions, objects

from snapcdc.sql import queries
from snapcdc.steps.plan import Version, version_statements
from snapcdc_local.engine.engine import read_athena_csv

pytest.importorskip("pyathena")

REAL_WORKGROUP = os.environ.get("SNAPCDC_ATHENA_WORKGROUP")
WORKGROUP = "snapcdc-fixtures"


class Target:
    """Where the statements run: connect() arguments, the S3 prefix the objects go to."""

    def __init__(self, connect_args: dict, staging: str, s3, database: str) -> None:
        self.connect_args = connect_args
        self.staging = staging
        self.s3 = s3
        self.database = database

    def upload(self) -> None:
        bucket, _, prefix = self.staging.removeprefix("s3://").partition("/")
        for case in CASES:
            for side in ("old", "new"):
                for path in objects(FIXTURES / case, side):
                    key = f"{prefix}{case}/{side}/{path.name}"
                    self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def location(self, case: str, side: str) -> str:
        return f"{self.staging}{case}/{side}/"


@pytest.fixture(scope="module")
def target(request):
    if REAL_WORKGROUP:
        import boto3

        staging = os.environ["SNAPCDC_ATHENA_STAGING"].rstrip("/") + "/"
        args = {"work_group": REAL_WORKGROUP, "region_name": os.environ["AWS_REGION"]}
        if os.environ.get("SNAPCDC_ATHENA_OUTPUT"):
            args["s3_staging_dir"] = os.environ["SNAPCDC_ATHENA_OUTPUT"]
        database = f"snapcdc_fixtures_{uuid.uuid4().hex[:8]}"
        yield Target(args, staging + f"{database}/", boto3.client("s3"), database)
        return
    served = request.getfixturevalue("served")
    s3 = served.client("s3")
    s3.create_bucket(Bucket="fixtures")
    served.client("athena").create_work_group(
        Name=WORKGROUP,
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://fixtures/results/"}},
    )
    args = {
        "work_group": WORKGROUP,
        "region_name": "us-east-1",
        "endpoint_url": served.url,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    yield Target(args, "s3://fixtures/cases/", s3, "snapcdc_fixtures")


@pytest.fixture(scope="module")
def cursor(target):
    from pyathena import connect

    target.upload()
    connection = connect(poll_interval=0.05, **target.connect_args)
    cursor = connection.cursor()
    cursor.execute(queries.create_database(target.database))
    yield cursor
    if REAL_WORKGROUP:
        cursor.execute(f"DROP DATABASE IF EXISTS `{target.database}` CASCADE")
    connection.close()


def as_text(values) -> list[str | None]:
    """Check values as Athena's CSV has them: Athena types the counts, the emulation may not."""
    return [None if v is None else str(v) for v in values]


@pytest.mark.parametrize("name", CASES)
def test_case(cursor, target, name: str):
    case = FIXTURES / name
    spec, versions = case_versions(name, target.location)
    plans = {
        side: version_statements(target.database, v)
        for side, v in versions.items()
        if side == "old"
    }
    plans["new"] = version_statements(target.database, versions["new"], versions.get("old"))
    expected_file = case / "expected_ops.csv"
    ran_ops = False
    for side, plan in plans.items():
        for _, kind, sql in plan:
            cursor.execute(sql)
            if kind == "check":
                assert [d[0] for d in cursor.description] == list(queries.CHECK_COLUMNS)
                expected = spec["checks"][side]
                rows = cursor.fetchall()
                assert [as_text(r)[: len(expected)] for r in rows] == [as_text(expected)], side
            elif kind == "ops" and side == "new" and expected_file.exists():
                assert_ops(cursor, expected_file, versions["new"])
                ran_ops = True
    assert ran_ops == expected_file.exists()


def assert_ops(cursor, expected_file: Path, version: Version) -> None:
    header = [d[0] for d in cursor.description]
    rows = [list(r) for r in cursor.fetchall()]
    expected_header, expected_rows = read_athena_csv(expected_file)
    assert header == expected_header == [c.lower() for c in ("op", *version.schema.columns)]
    assert sorted(rows, key=repr) == sorted(expected_rows, key=repr)
