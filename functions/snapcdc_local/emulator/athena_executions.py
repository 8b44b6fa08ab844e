"""What the emulated Athena keeps of a query and how its API shows it.

:class:`QueryExecution` is one query and its ``GetQueryExecution`` shape; the helpers page
``GetQueryResults`` (column info, ``NextToken``) and mirror successful DDL into moto's Glue
catalog, as Athena DDL is Glue catalog DDL (:func:`mirror_ddl`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from snapcdc_local.emulator import iam


class AthenaRequestError(Exception):
    """Answered to the caller as ``InvalidRequestException`` (or ``code``)."""

    def __init__(self, message: str, code: str = "InvalidRequestException") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class QueryExecution:
    id: str
    query: str
    database: str | None
    catalog: str
    workgroup: str
    output_location: str
    statement_type: str
    substatement_type: str
    state: str = "QUEUED"
    reason: str | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    completed: float | None = None
    scanned_bytes: int = 0
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list[str | None]] | None = None  # parsed result file, header first (cached)
    # Athena reads and writes with the credentials of whoever started the query.
    principal: iam.Principal | None = None

    def to_api(self) -> dict[str, Any]:
        status: dict[str, Any] = {"State": self.state, "SubmissionDateTime": self.submitted}
        if self.completed is not None:
            status["CompletionDateTime"] = self.completed
        if self.reason:
            status["StateChangeReason"] = self.reason
        if self.state == "FAILED":
            status["AthenaError"] = {
                "ErrorCategory": 2,  # USER: the query or its data is wrong
                "ErrorType": 1000,
                "Retryable": False,
                "ErrorMessage": self.reason or "",
            }
        queued_ms = int(((self.started or time.time()) - self.submitted) * 1000)
        engine_ms = (
            int(((self.completed or time.time()) - self.started) * 1000) if self.started else 0
        )
        context = {"Catalog": self.catalog}
        if self.database:
            context["Database"] = self.database
        return {
            "QueryExecutionId": self.id,
            "Query": self.query,
            "StatementType": self.statement_type,
            "SubstatementType": self.substatement_type,
            "ResultConfiguration": {"OutputLocation": self.output_location},
            "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
            "QueryExecutionContext": context,
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": engine_ms,
                "DataScannedInBytes": self.scanned_bytes,
                "TotalExecutionTimeInMillis": queued_ms + engine_ms,
                "QueryQueueTimeInMillis": queued_ms,
                "ServicePreProcessingTimeInMillis": 0,
                "QueryPlanningTimeInMillis": 0,
                "ServiceProcessingTimeInMillis": 0,
                "ResultReuseInformation": {"ReusedPreviousResult": False},
            },
            "WorkGroup": self.workgroup,
            "EngineVersion": {
                "SelectedEngineVersion": "AUTO",
                "EffectiveEngineVersion": "Athena engine version 3",
            },
        }


def columns_of(raw: Any) -> list[tuple[str, str]]:
    """Normalise the engine's column description to ``[(name, athena_type)]``."""
    columns: list[tuple[str, str]] = []
    for column in raw or []:
        if isinstance(column, str):
            columns.append((column, "varchar"))
        elif isinstance(column, Sequence) and len(column) >= 2:
            columns.append((str(column[0]), str(column[1])))
        else:
            columns.append(
                (str(getattr(column, "name", column)), str(getattr(column, "type", "varchar")))
            )
    return columns


def column_info(name: str, athena_type: str) -> dict[str, Any]:
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena_type,
        "Precision": 2147483647 if athena_type == "varchar" else 0,
        "Scale": 0,
        "Nullable": "UNKNOWN",
        "CaseSensitive": athena_type == "varchar",
    }


def encode_token(offset: int, query_id: str) -> str:
    return f"{query_id}:{offset}"


def decode_token(token: Any, query_id: str) -> int:
    prefix, _, offset = str(token).rpartition(":")
    if prefix != query_id or not offset.isdigit():
        raise AthenaRequestError(
            "The NextToken is not valid for this query", "InvalidRequestException"
        )
    return int(offset)


def mirror_ddl(execution: QueryExecution, account_id: str, region: str) -> None:
    """Athena DDL is Glue catalog DDL: keep moto's Glue catalog in step."""
    from moto.glue.models import glue_backends

    from snapcdc_local.engine.ddl import CreateDatabase, DropTable, ExternalTable, parse_ddl

    glue = glue_backends[account_id][region]
    statement = parse_ddl(execution.query)
    database = getattr(statement, "database", None) or execution.database or "default"
    if isinstance(statement, CreateDatabase):
        if database not in glue.databases:
            glue.create_database(database, {"Name": database})
    elif isinstance(statement, ExternalTable):
        if database in glue.databases and statement.table not in glue.databases[database].tables:
            glue.create_table(
                database,
                statement.table,
                {
                    "Name": statement.table,
                    "TableType": "EXTERNAL_TABLE",
                    "StorageDescriptor": {
                        "Columns": [{"Name": c, "Type": "string"} for c in statement.columns],
                        "Location": statement.location,
                    },
                },
            )
    elif isinstance(statement, DropTable) and statement.table in getattr(
        glue.databases.get(database), "tables", {}
    ):
        glue.delete_table(database, statement.table)
