"""Counting the ops of a result file for the hold guard (``resultcsv.count_leading``): the same
counts as splitting and parsing every record, for values that look like ops."""

from __future__ import annotations

import csv
import io
import random

import pytest

from snapcdc.aws.result_files import count_leading, iter_records
from snapcdc.sql.queries import OPS
from snapcdc.steps.hold import count_ops

TRICKY = [
    "plain",
    "",
    None,
    'say "hi"',
    "line\nbreak",
    '\n"DELETE",',
    'x\n"INSERT","y',
    "\r\n",
    '"UPDATE",',
    "DELETE",
    "é 東京 🎉",
]


def athena_csv(rows):
    """Rows written as Athena writes results: every value quoted, quotes doubled, NULL empty."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["op", "id", "a", "b"])
    text = out.getvalue()
    for row in rows:
        text += ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in row) + "\n"
    return text.encode()


@pytest.mark.parametrize("chunk_bytes", [1, 2, 7, 9, 10, 11, 64, 1 << 20])
def test_counts_equal_parsing_every_record(aws, chunk_bytes):
    rng = random.Random(chunk_bytes)
    rows = [[rng.choice(OPS), str(i), rng.choice(TRICKY), rng.choice(TRICKY)] for i in range(300)]
    aws.s3.put_object(Bucket="results", Key="athena/tricky.csv", Body=athena_csv(rows))
    uri = "s3://results/athena/tricky.csv"
    parsed = dict.fromkeys(OPS, 0)
    for fields, _ in list(iter_records(aws.s3, uri))[1:]:
        parsed[fields[0]] += 1
    assert parsed == {op: sum(r[0] == op for r in rows) for op in OPS}
    assert count_leading(aws.s3, uri, OPS, chunk_bytes=chunk_bytes) == parsed


def test_a_header_only_result_has_no_ops(aws):
    aws.s3.put_object(Bucket="results", Key="athena/empty.csv", Body=athena_csv([]))
    assert count_ops(aws.s3, "s3://results/athena/empty.csv") == dict.fromkeys(OPS, 0)
