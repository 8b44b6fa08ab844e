"""``sql/verify.sql`` on the engine: the last applied export against the target image the verify
writes (``snapcdc.model.target_image``), read back as the verify reads it
(``snapcdc.steps.drift``). Values a writer behind the pipeline's back could leave in the target
(line ends, NUL, numbers, a column spelled in another case) must never pass for the export's."""

from __future__ import annotations

import csv
import gzip
import io

from snapcdc.aws.result_files import parse_record
from snapcdc.model.contract import TableConfig, TableSchema
from snapcdc.model.target_image import image
from snapcdc.sql import queries
from snapcdc.steps.consumer import row_key
from snapcdc.steps.drift import parse_drift
from snapcdc_local.engine.engine import AthenaEngine, TableFile

SCHEMA = TableSchema(("region", "code", "note"), ("region", "code"))
EXPORT = [
    ["eu", 'a|"b"', 'x, "quoted"'],
    ["eu", "c", ""],
    ["us", "ü", "naïve"],
    ["us", "n", "ab"],
    ["us", "z", "ab"],
    ["us", "5", "5"],
    ["us", "case", "v"],
    ["us", "gone", "v"],
]


def item(region, code, *, note=None, deleted=False, raw_key=None, **row):
    key = raw_key if raw_key is not None else row_key([region, code])
    fields = {"region": {"S": region}, "code": {"S": code}, **row}
    if note is not None:
        fields["note"] = note
    value = {"pk": {"S": f"acme/t#{key}"}, "table_id": {"S": "acme/t"}, "row_key": {"S": key},
             "version": {"S": "V1"}, "deleted": {"BOOL": deleted}}  # fmt: skip
    if not deleted:
        value["row"] = {"M": fields}
    return key, value


TARGET = [
    item("eu", 'a|"b"', note={"S": 'x, "quoted"'}),  # equal, quotes and the delimiter
    item("eu", "c", note={"S": ""}),  # equal, empty
    item("us", "ü", note={"S": "naïve"}),  # equal, unicode
    item("us", "n", note={"S": "a\nb"}),  # a line end OpenCSVSerDe would split at
    item("us", "z", note={"S": "a\x00b"}),  # a NUL it would drop
    item("us", "5", note={"N": "5"}),  # a number, not the string
    item("us", "case", Note={"S": "v"}),  # the column spelled in another case
    item("us", "gone", deleted=True),  # a tombstone where the export has a row
    item("ap", "x", raw_key='["ap", "x"]', note={"S": "v"}),  # not the consumer's key text
]


def run_verify(tmp_path):
    export = tmp_path / "export.csv.gz"
    rows = io.StringIO()
    csv.writer(rows, delimiter=";", lineterminator="\n").writerows(EXPORT)
    export.write_bytes(gzip.compress(rows.getvalue().encode()))
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for key, value in TARGET:
        writer.writerow(image(value, "acme/t", key, SCHEMA.columns, len(SCHEMA.key)))
    target = tmp_path / "image.csv.gz"
    target.write_bytes(gzip.compress(text.getvalue().encode()))
    files = {
        "s3://bucket/t/V1/": [TableFile(str(export), "s3://bucket/t/V1/a.csv.gz")],
        "s3://bucket/verify/0/": [TableFile(str(target), "s3://bucket/verify/0/000000.csv.gz")],
    }
    engine = AthenaEngine(lambda location: files.get(location, []))
    engine.execute(queries.create_database("d"))
    config = TableConfig(delimiter=";", header=False, columns=SCHEMA.columns)
    engine.execute(
        queries.create_export_table("d", "src", SCHEMA.columns, "s3://bucket/t/V1/", config)
    )
    engine.execute(queries.create_target_image_table("d", "img", SCHEMA, "s3://bucket/verify/0/"))
    sql = queries.verify("d", "src", SCHEMA, ["s3://bucket/t/V1/a.csv.gz"], "img")
    engine.execute(sql, output_path=tmp_path / "result.csv")
    lines = (tmp_path / "result.csv").read_bytes().splitlines()
    return [parse_drift(parse_record(line), SCHEMA) for line in lines[1:]]


def test_only_what_the_pipeline_would_not_have_written_drifts(tmp_path):
    drifts = {(d.kind, d.key, tuple(d.columns)) for d in run_verify(tmp_path)}
    assert drifts == {
        ("different", '["us","n"]', ("note",)),
        ("different", '["us","z"]', ("note",)),
        ("different", '["us","5"]', ("note",)),
        ("different", '["us","case"]', ("note", "Note")),
        ("missing", '["us","gone"]', ()),
        ("extra", '["ap", "x"]', ()),
    }


def test_a_drifted_row_carries_what_a_repair_writes(tmp_path):
    by_key = {d.key: d for d in run_verify(tmp_path)}
    assert by_key['["us","gone"]'].row == {"region": "us", "code": "gone", "note": "v"}
    assert by_key['["us","n"]'].key_values == ["us", "n"]
    # a key the consumer never writes cannot be named by an op: no key values
    assert by_key['["ap", "x"]'].key_values is None and by_key['["ap", "x"]'].row is None
