"""The pipeline's Athena statements, one function per template in ``sql/``.

Each function validates its parameters against the contract and renders its template. The
rendered SQL is what Athena runs in AWS and what the embedded DuckDB engine runs here.

Result shapes (what readers of the result CSV rely on):

- ``check_export``: one row ``row_count, duplicate_keys, duplicate_sample, empty_keys,
  ragged_rows``, per AWS size limit ``largest_*_bytes, largest_*_key``, then ``blank_lines`` and
  a sample of each kind of bad row with the object it is in (``CHECK_COLUMNS``).
- ``delta``, ``reconverge`` and ``first_load``: ``op`` (INSERT / UPDATE / DELETE) then the new
  version's columns in file order; DELETE rows carry the old row's values.

>>> print(drop_export_table("snapcdc_tenant", "test_table__v1"), end="")
DROP TABLE IF EXISTS `snapcdc_tenant`.`test_table__v1`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from snapcdc.model.contract import ContractError, TableConfig, TableSchema
from snapcdc.model.errors import Setting
from snapcdc.model.names import validate_glue_name as validate_name
from snapcdc.model.op_records import OPS as OPS  # re-exported: the ops a delta result holds
from snapcdc.sql.render import S3_URI_RE, render

# The pipeline's own column names in a statement (the extra column, the sizes the check measures,
# the side markers of a join) start with this prefix, lengthened with '_' until no user column of
# the statement starts with it: a user's column, whatever its name, never collides with one.
INTERNAL_PREFIX = "_snapcdc_"
INTERNAL_NAMES = (
    "extra", "side", "row_bytes", "key_bytes", "key_text", "item_bytes", "record_bytes",
    "pk_bytes", "suspect", "blank", "empty_key", "ragged", "path", "fields", "sample",
    "field_count",
)  # fmt: skip
# Every export table gets one more column than the file declares: OpenCSVSerde drops fields
# past the last column silently, so a row with too many fields shows up as a value here.
EXTRA_COLUMN = INTERNAL_PREFIX + "extra"

CHECK_COLUMNS = (
    "row_count",
    "duplicate_keys",
    "duplicate_sample",
    "empty_keys",
    "ragged_rows",
    # per AWS size limit (snapcdc.model.limits): the largest row's size bound and its key
    "largest_item_bytes",
    "largest_item_key",
    "largest_record_bytes",
    "largest_record_key",
    "largest_pk_bytes",
    "largest_pk_key",
    # bad rows the other checks leave out, and where a sample of each kind of bad row is
    "blank_lines",
    "blank_file",
    "ragged_sample",
    "ragged_sample_fields",
    "declared_fields",
    "ragged_file",
    "empty_key_sample",
    "empty_key_file",
)


def internal_names(*column_lists: Sequence[str]) -> dict[str, str]:
    """The pipeline's own column names for a statement over these columns (INTERNAL_PREFIX).

    >>> internal_names(["id", "_snapcdc_extra"])["extra"]
    '__snapcdc_extra'
    """
    folded = {c.lower() for columns in column_lists for c in columns}
    prefix = INTERNAL_PREFIX
    while any(name.startswith(prefix) for name in folded):
        prefix = "_" + prefix
    return {name: prefix + name for name in INTERNAL_NAMES}


def extra_column(columns: Sequence[str]) -> str:
    """The export table's extra column (see EXTRA_COLUMN), named apart from ``columns``."""
    return internal_names(columns)["extra"]


def glue_names(database: str, **tables: str) -> dict[str, str]:
    """A statement's Glue names, validated: the ``database`` and each table keyword given.

    >>> glue_names("snapcdc_t", new_table="x__v1")
    {'database': 'snapcdc_t', 'new_table': 'x__v1'}
    """
    names = {"database": validate_name(database, "database")}
    return names | {param: validate_name(name, "table") for param, name in tables.items()}


def create_database(database: str) -> str:
    return render("create_database", **glue_names(database))


def create_export_table(
    database: str, table: str, columns: Sequence[str], location: str, config: TableConfig
) -> str:
    """An external table over every object under ``location`` (an ``s3://`` prefix).

    An escape character equal to the quote character means RFC 4180 doubled quotes, which
    OpenCSVSerde understands anyway, so it is rendered as "no escape character".
    """
    escape = None if config.escape == config.quote else config.escape
    if escape is not None and escape == config.delimiter:
        raise ContractError(f"escape and delimiter must differ, both are {escape!r}")
    return render(
        "create_export_table",
        **glue_names(database, table=table),
        columns=list(columns),
        extra_column=extra_column(columns),
        location=location,
        delimiter=config.delimiter,
        quote=config.quote,
        escape=escape,
        header=config.header,
    )


def object_uris(files: Sequence[str] | None) -> list[str] | None:
    """The ``s3://bucket/key`` objects a query may read rows from (``"$path"``), or None for
    every object under the table's location (only where nothing else can be there)."""
    if files is None:
        return None
    if isinstance(files, str) or not files:
        raise ContractError(f"expected a non-empty list of S3 object URIs, got {files!r}")
    for uri in files:
        if not isinstance(uri, str) or not S3_URI_RE.fullmatch(uri) or uri.endswith("/"):
            raise ContractError(f"invalid S3 object URI {uri!r}")
    return list(files)


def check_export(
    database: str,
    table: str,
    schema: TableSchema,
    files: Sequence[str] | None = None,
    *,
    size_limits: bool = True,
) -> str:
    """The data checks, and with ``size_limits`` each row's AWS size bounds (``model.limits``);
    without, the size columns are NULL (``snapcdc diff`` stores nothing in AWS)."""
    from snapcdc.model import (
        limits,  # only the size bounds need it
    )

    # without the size bounds nothing needs the overheads (computing them imports the
    # publishing and consumer code, and boto3 with it: most of snapcdc diff's start-up)
    overheads = limits.overheads(schema) if size_limits else limits.Overheads(0, 0, 0)
    return render(
        "check_export",
        **glue_names(database, table=table),
        columns=list(schema.columns),
        key=list(schema.key),
        extra_column=extra_column(schema.columns),
        internal=internal_names(schema.columns),
        files=object_uris(files),
        item_overhead=overheads.item,
        item_limit=limits.DYNAMODB_ITEM_BYTES,
        record_overhead=overheads.record,
        record_limit=limits.KINESIS_RECORD_BYTES,
        pk_overhead=overheads.partition_key,
        pk_limit=limits.DYNAMODB_PARTITION_KEY_BYTES,
        size_limits=size_limits,
    )


def delta(
    database: str,
    prev_table: str,
    prev: TableSchema,
    new_table: str,
    new: TableSchema,
    prev_files: Sequence[str] | None = None,
    new_files: Sequence[str] | None = None,
) -> str:
    """INSERT/UPDATE/DELETE rows that turn ``prev_table``'s rows into ``new_table``'s.

    ``prev_files`` / ``new_files``: the objects each side's rows come from (see object_uris).
    """
    return render(
        "delta",
        **glue_names(database, prev_table=prev_table, new_table=new_table),
        prev_columns=list(prev.columns),
        new_columns=list(new.columns),
        prev_files=object_uris(prev_files),
        new_files=object_uris(new_files),
        internal=internal_names(prev.columns, new.columns),
        **delta_columns(prev, new),
    )


def delta_columns(prev: TableSchema, new: TableSchema) -> dict[str, object]:
    """How the columns of two versions line up, matched by name (case-insensitively).

    A column present on one side only compares as NULL on the other, so every row kept
    across a column change becomes an UPDATE carrying the new row's values.

    Athena folds names to lowercase
    (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html), so
    ``Name`` and ``name`` are the same column to the join, yet the target stores each row
    under the spelling of the version that wrote it. When a column's spelling changes (case
    only), ``respelled`` is true and every kept row is an UPDATE, so the whole target takes
    the new export's names instead of mixing both.
    """
    if [k.lower() for k in prev.key] != [k.lower() for k in new.key]:
        raise ContractError(
            f"key changed from {list(prev.key)} to {list(new.key)}: the target holds the "
            f"table's rows by key, so every version keeps the key of the version before; to "
            f"load this export, give it the key column(s) {list(prev.key)} (or ",
            Setting("key", list(prev.key)),
            ") and upload it again",
        )
    prev_by = {c.lower(): c for c in prev.columns}
    new_by = {c.lower(): c for c in new.columns}
    keys = {k.lower() for k in new.key}
    compared = []  # (prev name or None, new name or None) for every non-key column
    for folded in list(new_by) + [f for f in prev_by if f not in new_by]:
        if folded not in keys:
            compared.append((prev_by.get(folded), new_by.get(folded)))
    respelled = sorted(
        f"{prev_by[f]} -> {new_by[f]}" for f in new_by if f in prev_by and prev_by[f] != new_by[f]
    )
    return {
        "respelled": respelled,
        "key": [(prev_by[k.lower()], k) for k in new.key],
        "compared": compared,
        # output columns: the new version's, each with its name on the previous side (or None)
        "output": [(prev_by.get(c.lower()), c) for c in new.columns],
    }


@dataclass(frozen=True)
class Side:
    """One version ``reconverge`` reads: its Glue table, schema and the objects it came from."""

    table: str
    schema: TableSchema
    files: Sequence[str]


def reconverge(
    database: str,
    new_table: str,
    new: TableSchema,
    new_files: Sequence[str],
    previous: Side | None,
    diverged: Sequence[Side],
) -> str:
    """Ops that make the target equal to ``new`` whatever part of the ``diverged`` versions'
    ops landed: every new row upserted, every key of ``previous`` (the last applied version, if
    any) or of a diverged version that ``new`` lacks deleted. Same shape as ``delta``."""
    if not diverged:
        raise ContractError("reconverge needs at least one diverged version")

    def side(s: Side) -> dict[str, object]:
        return {
            "table": validate_name(s.table, "table"),
            "columns": list(s.schema.columns),
            "files": object_uris(s.files),
            "key": delta_columns(s.schema, new)["key"],  # refuses a changed key
        }

    keys = {k.lower() for k in new.key}
    output = (
        delta_columns(previous.schema, new)["output"]
        if previous
        else [(None, c) for c in new.columns]
    )
    return render(
        "reconverge",
        **glue_names(database, new_table=new_table),
        new_columns=list(new.columns),
        new_key=list(new.key),
        new_files=object_uris(new_files),
        previous=side(previous) if previous else None,
        diverged=[side(s) for s in diverged],
        internal=internal_names(
            new.columns, *(s.schema.columns for s in [*diverged, *([previous] if previous else [])])
        ),
        delete_output=[(p, n, n.lower() in keys) for p, n in output],
    )


def first_load(
    database: str, table: str, schema: TableSchema, files: Sequence[str] | None = None
) -> str:
    return render(
        "first_load",
        **glue_names(database, table=table),
        columns=list(schema.columns),
        files=object_uris(files),
    )


def drop_export_table(database: str, table: str) -> str:
    return render(
        "drop_export_table",
        **glue_names(database, table=table),
    )


def create_target_image_table(database: str, table: str, schema: TableSchema, location: str) -> str:
    """An external table over a verify's target image files (``snapcdc.model.target_image``)
    under ``location``, which holds nothing else."""
    from snapcdc.model.target_image import column_names

    columns = column_names(len(schema.key), len(schema.columns))
    # ',' separated, every field quoted, quotes doubled, no header
    image_format = TableConfig(columns=tuple(columns), delimiter=",", quote='"', header=False)
    return create_export_table(database, table, columns, location, image_format)


def verify(
    database: str,
    source_table: str,
    schema: TableSchema,
    files: Sequence[str],
    target_table: str,
) -> str:
    """One row per key whose live target row differs from the export's (``sql/verify.sql``):
    ``source_table`` reads the last applied export (from exactly ``files``), ``target_table``
    the target image (:func:`create_target_image_table`)."""
    return render(
        "verify",
        **glue_names(database, source_table=source_table, target_table=target_table),
        columns=list(schema.columns),
        key=list(schema.key),
        files=object_uris(files),
        internal=internal_names(schema.columns),
        key_positions=list(range(len(schema.key))),
        column_positions=list(range(len(schema.columns))),
    )
