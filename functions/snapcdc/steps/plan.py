"""Planning one version: first load, delta against the last applied version, or skip.

The plan is the ordered list of Athena statements the state machine runs one by one::

    create_database, drop_new_table, create_new_table, [create_previous_table],
    check_export, delta | first_load, [drop_previous_table]

or, when the head records diverged versions (a version that failed after its ops began to
reach the target), the reconverge plan: the last applied and each diverged version's tables,
check_export, reconverge (every new row written, every key the new export lacks deleted), drops.
A version before a diverged one is skipped: its writes would lose to the diverged version's.

A statement longer than INLINE_SQL_BYTES (wide tables: the delta grows with the columns) is
written to S3 next to the Athena results and travels as ``sql_location``, so the execution state
stays far below Step Functions' 256 KB limit; short ones travel inline and show in the history.

The new version's table is dropped and recreated (a failed earlier attempt may have left it with
an older definition); the previous version's table is recreated only if it is missing, with the
configuration and schema recorded in the table's head when that version was applied. It is
dropped after the delta; the new one stays as the next delta's previous table.

A table's LOCATION must be a folder, and Athena reads every object under it
(https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html): a later file of an
applied version, a manifest or a ``.tmp`` would become rows. So every query reads its versions
through ``"$path"``, the object each row came from
(https://aws.amazon.com/premiumsupport/knowledge-center/find-s3-source-file-athena-table-row/),
restricted to the files each version was applied from, recorded in the head as ``files``. A
multi-part version (``_manifest.json``, ``model.manifest``) is exactly the parts its manifest
lists, each checked present (and of its size) before any statement is planned.

Athena refuses a query string longer than 262,144 bytes, a quota that cannot be raised
(https://repost.aws/knowledge-center/athena-query-string-length); a table too wide for one
delta fails here, at Plan, naming the table and the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snapcdc.model.contract import (
    MANIFEST_FILE,
    ContractError,
    ExportRef,
    TableConfig,
    TableSchema,
    parse_export_key,
)
from snapcdc.model.header import (  # header_fields: snapcdc diff and tests/sql import it here
    header_fields as header_fields,
)
from snapcdc.model.header import read_header, read_table_config, version_schema
from snapcdc.model.manifest import completion, read_manifest, version_parts
from snapcdc.model.names import export_table_name, glue_database
from snapcdc.model.s3paths import object_uri, split_s3_uri
from snapcdc.model.state import Plan, Statement, Upload
from snapcdc.sql import queries

INLINE_SQL_BYTES = 8 * 1024
MAX_QUERY_BYTES = 262_144


def plan_upload(
    s3: Any,
    upload: Upload,
    head: dict[str, Any] | None,
    database_prefix: str,
    sql_prefix: str = "",
) -> Plan:
    """The plan for one registered upload, given the table's head record (or None).

    ``sql_prefix`` (``s3://bucket/prefix/``): where long statements are written; empty keeps
    every statement inline.
    """
    ref = parse_export_key(upload.key)
    bucket = upload.bucket or ""
    last = (head or {}).get("last_applied_version")
    if last and ref.version <= last:
        return Plan(
            action="skip",
            reason=f"version {ref.version} is not after the last applied version {last}"
            + (_same_version_hint(ref, bucket, head) if ref.version == last else ""),
            last_applied_version=last,
        )
    diverged = diverged_versions(head)
    behind = [d["version"] for d in diverged if d["version"] > ref.version]
    if behind:
        # Its writes would lose to the diverged version's (the consumer keeps the newest
        # version of a row), so the target could not end equal to it.
        return Plan(
            action="skip",
            reason=(
                f"version {ref.version} is before {max(behind)}, whose ops partly reached the "
                f"target; upload a version not before {max(behind)} to reconverge the table"
            ),
            last_applied_version=last,
        )
    config = read_table_config(s3, bucket, ref)
    if completion(config, ref) != "version":
        raise ContractError(
            f'{ref.key} is one part of a multi-part version (complete_on "manifest" in '
            f"{ref.config_key}): its version starts when {MANIFEST_FILE} arrives"
        )
    manifest = read_manifest(s3, bucket, ref) if ref.is_manifest else None
    keys = version_parts(s3, bucket, ref, manifest) if manifest else [ref.key]
    previous_key = (head or {}).get("schema", {}).get("key") if last else None
    schema = version_schema(
        config, keys, lambda key: read_header(s3, bucket, key, config), previous_key
    )
    database = glue_database(database_prefix, ref.tenant)
    new = Version(
        export_table_name(ref.table, ref.version),
        schema,
        config,
        f"s3://{bucket}/{ref.version_prefix}",
        [f"s3://{bucket}/{key}" for key in keys],
    )
    plan: dict[str, Any] = {
        "expected_rows": manifest.rows if manifest else None,
        "database": database,
        "table": new.table,
        "location": new.location,
        "files": new.files,
        "schema": schema.to_dict(),
        "config": config.to_dict(),
    }
    if diverged:
        statements = new_table_statements(database, new) + reconverge_statements(
            database, ref.table, new.table, schema, new.files, head if last else None, diverged
        )
        plan.update(
            action="reconverge",
            previous_version=last,
            diverged_versions=[d["version"] for d in diverged],
            reason=(
                f"reconverge after {', '.join(d['version'] for d in diverged)}, whose ops "
                "partly reached the target: every row written, every key it lacks deleted"
            ),
        )
    elif last:
        previous = Version(
            export_table_name(ref.table, last),
            TableSchema.from_dict(head["schema"]),
            TableConfig.from_dict(head["config"]),
            head["location"],
            applied_files(head),
        )
        statements = version_statements(database, new, previous)
        plan.update(action="delta", previous_version=last, reason=f"delta against {last}")
    else:
        statements = version_statements(database, new)
        plan.update(action="first_load", reason="no version of this table was applied yet")
    check_statement_sizes(statements, f"table {ref.table_id} version {ref.version}", schema)
    plan["queries"] = [
        statement(s3, index, name, kind, sql, sql_prefix)
        for index, (name, kind, sql) in enumerate(statements)
    ]
    for query in plan["queries"]:
        if query["kind"] == "check":
            # the manifest's row count, judged with the export check (snapcdc.steps.check),
            # and the key it checks, which a duplicate-key reason names
            query["expected_rows"] = plan["expected_rows"]
            query["key"] = list(schema.key)
    return Plan.from_dict(plan)


@dataclass(frozen=True)
class Version:
    """One export version as its statements read it: its Glue table, schema, configuration,
    LOCATION, and the objects its rows come from (None: every object under the location)."""

    table: str
    schema: TableSchema
    config: TableConfig
    location: str
    files: list[str] | None = None


def version_statements(
    database: str, new: Version, previous: Version | None = None, *, size_limits: bool = True
) -> list[tuple[str, str, str]]:
    """``(name, kind, sql)`` of a first load of ``new``, or of its delta against ``previous``
    (see the module docstring). ``size_limits=False`` leaves the AWS size bounds out of the
    check (``snapcdc diff``)."""
    statements = new_table_statements(database, new)
    check = queries.check_export(
        database, new.table, new.schema, new.files, size_limits=size_limits
    )
    if previous is None:
        first_load = queries.first_load(database, new.table, new.schema, new.files)
        return [*statements, ("check_export", "check", check), ("first_load", "ops", first_load)]
    delta = queries.delta(
        database,
        previous.table,
        previous.schema,
        new.table,
        new.schema,
        previous.files,
        new.files,
    )
    return [
        *statements,
        ("create_previous_table", "ddl", _create(database, previous)),
        ("check_export", "check", check),
        ("delta", "ops", delta),
        ("drop_previous_table", "ddl", queries.drop_export_table(database, previous.table)),
    ]


def new_table_statements(database: str, new: Version) -> list[tuple[str, str, str]]:
    """The database, and the new version's table dropped and created afresh (a failed earlier
    attempt may have left it with an older definition): every plan starts with these."""
    return [
        ("create_database", "ddl", queries.create_database(database)),
        ("drop_new_table", "ddl", queries.drop_export_table(database, new.table)),
        ("create_new_table", "ddl", _create(database, new)),
    ]


def _create(database: str, version: Version) -> str:
    return queries.create_export_table(
        database, version.table, version.schema.columns, version.location, version.config
    )


def check_statement_sizes(
    statements: list[tuple[str, str, str]], what: str, schema: TableSchema
) -> None:
    """Refuse a statement longer than Athena's query string limit, naming it and the size."""
    for name, _, sql in statements:
        size = len(sql.encode())
        if size > MAX_QUERY_BYTES:
            raise ContractError(
                f"{what}: the {name} statement is {size:,} bytes, more than Athena's "
                f"{MAX_QUERY_BYTES:,}-byte query string limit ({len(schema.columns)} columns); "
                "shorten the column names or split the table"
            )


def diverged_versions(head: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The versions recorded as diverged in the head (their ops partly reached the target), in
    version order, each once. See ``snapcdc.steps.mark_failed.diverge_if_published``."""
    seen: dict[tuple[str, ...], dict[str, Any]] = {}
    for entry in (head or {}).get("diverged") or []:
        seen.setdefault((entry["version"], *entry["files"]), entry)
    return sorted(seen.values(), key=lambda entry: entry["version"])


def reconverge_statements(
    database: str,
    table_name: str,
    new_table: str,
    schema: TableSchema,
    files: list[str],
    head: dict[str, Any] | None,
    diverged: list[dict[str, Any]],
) -> list[tuple[str, str, str]]:
    """Create the last applied (``head``, if any) and diverged versions' tables, check the new
    export, reconverge (``sql/reconverge.sql``), drop the tables created here."""
    created: dict[str, str] = {}  # Glue table -> statement creating it
    sides = []
    previous = None
    for role, entry in ([("previous", head)] if head else []) + [("diverged", d) for d in diverged]:
        version = entry.get("last_applied_version") or entry["version"]
        side_table = export_table_name(table_name, version)
        side_schema = TableSchema.from_dict(entry["schema"])
        entry_files = applied_files(entry) if role == "previous" else list(entry["files"])
        side = queries.Side(side_table, side_schema, entry_files)
        if role == "previous":
            previous = side
        else:
            sides.append(side)
        if side_table != new_table and side_table not in created:
            created[side_table] = queries.create_export_table(
                database,
                side_table,
                side_schema.columns,
                entry["location"],
                TableConfig.from_dict(entry["config"]),
            )
    return [
        *((f"create_{t}", "ddl", sql) for t, sql in created.items()),
        ("check_export", "check", queries.check_export(database, new_table, schema, files)),
        (
            "reconverge",
            "ops",
            queries.reconverge(database, new_table, schema, files, previous, sides),
        ),
        *((f"drop_{t}", "ddl", queries.drop_export_table(database, t)) for t in created),
    ]


def _same_version_hint(ref: ExportRef, bucket: str, head: dict[str, Any]) -> str:
    """What a new object of the version last applied means: the same file again, or one more
    file of a version that was applied from another (a version is one file unless its table
    completes on a manifest)."""
    try:
        files = applied_files(head)
    except ContractError:
        return ""
    if ref.is_manifest or f"s3://{bucket}/{ref.key}" in files:
        return " (it was applied already; upload a later version to change the table)"
    names = ", ".join(f.rsplit("/", 1)[-1] for f in files)
    return (
        f" (applied from {names}): each file is a version of its own; for versions made of "
        f'several files, set "complete_on": "manifest" in {ref.config_key} and upload the '
        f"parts, then a {MANIFEST_FILE} listing them"
    )


def applied_files(head: dict[str, Any]) -> list[str]:
    """The ``s3://`` objects the head's version was applied from.

    Heads written before ``files`` was recorded name their one applied key (``applied_key``)
    beside the version's location.
    """
    if head.get("files"):
        return list(head["files"])
    location, key = head.get("location") or "", head.get("applied_key") or ""
    if location.startswith("s3://") and key:
        bucket, _ = split_s3_uri(location)
        return [f"s3://{bucket}/{key}"]
    raise ContractError(
        f"the head record of version {head.get('last_applied_version')} names no applied "
        "files (neither files nor applied_key)"
    )


def statement(
    s3: Any, index: int, name: str, kind: str, sql: str, sql_prefix: str
) -> dict[str, Any]:
    """``{name, kind, sql}``, or ``{name, kind, sql_location}`` for a long statement."""
    if not sql_prefix or len(sql.encode()) <= INLINE_SQL_BYTES:
        return {"name": name, "kind": kind, "sql": sql}
    location = f"{sql_prefix}{index:02d}-{name}.sql"
    bucket, key = object_uri(location)
    s3.put_object(Bucket=bucket, Key=key, Body=sql.encode(), ContentType="text/plain")
    return {"name": name, "kind": kind, "sql_location": location}


def statement_sql(s3: Any, query: Statement) -> str:
    """The SQL of a planned statement, inline or from S3."""
    if query.sql is not None:
        return query.sql
    bucket, key = object_uri(query.sql_location)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def sql_prefix_for(athena_output: str, execution_arn: str) -> str:
    """Where one execution's long statements go: beside the Athena results, under ``plans/``.

    >>> sql_prefix_for("s3://results/athena/", "arn:aws:states:r:1:execution:sm:run-1")
    's3://results/plans/run-1/'
    """
    if not athena_output:
        return ""
    bucket, _ = split_s3_uri(athena_output)
    return f"s3://{bucket}/plans/{execution_arn.rsplit(':', 1)[-1]}/"
