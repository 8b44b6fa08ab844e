"""The Glue Data Catalog permissions Athena checks, with the caller's credentials, per statement.

From Athena's "Configure access to databases and tables in the AWS Glue Data Catalog"
(https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html):

- "Mandatory": ``glue:GetDatabase`` and ``glue:CreateDatabase`` on the Region's ``catalog`` and
  its ``database/default``, whatever the statement (also what queries without a database context
  use). Field reports of the failure without it: awsdocs/amazon-athena-user-guide#81,
  apache/kyuubi#4952.
- A non-delete action needs the permission on the resource and on all its ancestors (a table's
  database and the catalog); ``DROP TABLE`` needs the delete action likewise.
- The page's per-statement examples: CREATE DATABASE ``GetDatabase``, ``CreateDatabase``;
  CREATE TABLE ``GetDatabase``, ``GetTable``, ``CreateTable`` (the archived copy in
  awsdocs/amazon-athena-user-guide), to which the current page adds ``GetDatabases`` and
  ``GetTables`` (the 2026-12-01 review of the stack, audit row 1): both are required here, so a
  template that works here does not miss them in AWS; DROP TABLE ``GetDatabase``, ``GetTable``,
  ``DeleteTable`` (partition actions only for a partitioned table). Reading a table needs
  ``GetTable`` and the partition listing ``GetPartitions`` on it and its ancestors. Glue itself
  documents the ancestors rule: "to grant Get permission to a table that permission to the
  catalog and database resources is also required"
  (https://docs.aws.amazon.com/glue/latest/dg/glue-policy-examples-iam.html).

S3 is checked where Athena touches it: the engine reads a LOCATION's objects through boto3 as
the caller (``s3:ListBucket``, ``s3:GetObject``), and the result is written the same way
(``s3:PutObject``); :func:`output_requirements` adds ``s3:GetBucketLocation`` on the output
bucket, without which Athena fails with "Unable to verify/create output bucket"
(https://repost.aws/knowledge-center/athena-output-bucket-error).

>>> from snapcdc_local.emulator.iam_actions import Where
>>> needs = catalog_requirements("DROP TABLE d.t", None, Where("us-east-1", "1"))
>>> ("glue:DeleteTable", "arn:aws:glue:us-east-1:1:table/d/t") in needs
True
"""

from __future__ import annotations

from sqlglot import exp

from snapcdc.model.s3paths import split_s3_uri
from snapcdc_local.emulator.iam_actions import Requirement, Where
from snapcdc_local.engine.ddl import CreateDatabase, DdlError, DropTable, ExternalTable, parse_ddl
from snapcdc_local.engine.engine import (
    DEFAULT_DATABASE,
    EngineError,
    parse_statement,
    table_references,
)

MANDATORY_ACTIONS = ("glue:GetDatabase", "glue:CreateDatabase")
READ_TABLE_ACTIONS = ("glue:GetTable", "glue:GetPartitions")


def catalog_requirements(sql: str, database: str | None, where: Where) -> list[Requirement]:
    """Glue (action, ARN) pairs Athena checks before running ``sql`` in ``database``."""
    prefix = f"arn:aws:glue:{where.region}:{where.account}:"
    catalog = prefix + "catalog"

    def on_database(actions: tuple[str, ...], db: str) -> list[Requirement]:
        return [(a, r) for a in actions for r in (catalog, f"{prefix}database/{db}")]

    def on_table(actions: tuple[str, ...], db: str, table: str) -> list[Requirement]:
        return on_database(actions, db) + [(a, f"{prefix}table/{db}/{table}") for a in actions]

    needs = on_database(MANDATORY_ACTIONS, DEFAULT_DATABASE)
    context = (database or DEFAULT_DATABASE).lower()
    try:
        statement = parse_statement(sql)
        if isinstance(statement, exp.Query):
            for db, table in table_references(statement, context):
                needs += on_database(("glue:GetDatabase",), db)
                needs += on_table(READ_TABLE_ACTIONS, db, table)
            return needs
        ddl = parse_ddl(statement)
    except (EngineError, DdlError, ValueError):
        return needs  # the engine rejects the statement with its own message
    if isinstance(ddl, CreateDatabase):
        needs += on_database(("glue:GetDatabase", "glue:CreateDatabase"), ddl.database)
    elif isinstance(ddl, ExternalTable):
        db = ddl.database or context
        needs += on_database(("glue:GetDatabase", "glue:GetDatabases"), db)
        needs += on_table(("glue:GetTable", "glue:GetTables", "glue:CreateTable"), db, ddl.table)
    elif isinstance(ddl, DropTable):
        db = ddl.database or context
        needs += on_database(("glue:GetDatabase",), db)
        needs += on_table(("glue:GetTable", "glue:DeleteTable"), db, ddl.table)
    return needs


def output_requirements(output_location: str) -> list[Requirement]:
    bucket, _ = split_s3_uri(output_location)
    return [("s3:GetBucketLocation", f"arn:aws:s3:::{bucket}")]
