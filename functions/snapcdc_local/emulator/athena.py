"""Athena's query API, answered by the embedded DuckDB engine.

moto's Athena accepts ``StartQueryExecution`` but runs nothing (every query succeeds at once
with no rows), and routes only one of Athena's two wire protocols. :class:`AthenaBridge` runs
the queries, and with its workgroups (:mod:`.athena_workgroups`) answers Athena's API through
the front of :mod:`.athena_api` while installed:

- ``StartQueryExecution`` checks the workgroup and output location like Athena, queues the
  query and runs it on the engine in a worker thread, with the database from
  ``QueryExecutionContext``; the result CSV is written to ``{OutputLocation}/{id}.csv`` in moto's
  S3 (``{id}.txt`` for DDL), as Athena writes it. The call answers once the query has ended or
  after ``start_wait`` seconds (:data:`START_WAIT_SECONDS`), whichever comes first. Athena's
  start is asynchronous and a caller cannot tell a query that ended before its first
  ``GetQueryExecution`` from one that ended before the start answered; what this saves is the
  caller's sleep before that first status check, which only passes time here: the engine ends
  most statements in milliseconds, Athena in seconds. (The states a caller may see:
  https://docs.aws.amazon.com/athena/latest/APIReference/API_QueryExecutionStatus.html)
- ``GetQueryExecution`` / ``BatchGetQueryExecution`` report the real state (QUEUED, RUNNING,
  SUCCEEDED, FAILED with ``StateChangeReason`` and ``AthenaError``) and statistics.
- ``GetQueryResults`` pages the result file (``MaxResults`` up to 1000, ``NextToken``), the
  header as the first row of the first page, NULL as a cell without ``VarCharValue``.
- ``StopQueryExecution`` cancels a query that has not started.

Successful DDL is mirrored into moto's Glue catalog (databases, tables with their columns and
location) since in AWS Athena DDL is Glue catalog DDL.

>>> statement_type("DROP TABLE IF EXISTS `d`.`t`")
('DDL', 'DROP_TABLE')
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import boto3
from sqlglot import exp

from snapcdc.aws.result_files import read_all
from snapcdc.model.s3paths import split_s3_uri
from snapcdc_local.emulator import iam
from snapcdc_local.emulator.athena_access import catalog_requirements, output_requirements
from snapcdc_local.emulator.athena_api import AthenaApi
from snapcdc_local.emulator.athena_executions import (
    AthenaRequestError,
    QueryExecution,
    column_info,
    columns_of,
    decode_token,
    encode_token,
    mirror_ddl,
)
from snapcdc_local.emulator.athena_workgroups import Workgroups
from snapcdc_local.emulator.iam_actions import Where
from snapcdc_local.engine.engine import EngineError, parse_statement

log = logging.getLogger(__name__)

MAX_RESULTS = 1000
# Athena's query string quota: 262,144 bytes, not adjustable; a longer one is refused by
# StartQueryExecution with InvalidRequestException
# (https://repost.aws/knowledge-center/athena-query-string-length).
MAX_QUERY_BYTES = 262_144
# Long enough for the statements of a small version, short against a Lambda timeout.
START_WAIT_SECONDS = 1.0
DDL_VERBS = {exp.Create: "CREATE", exp.Drop: "DROP", exp.Alter: "ALTER", exp.Describe: "DESCRIBE"}


class EngineLike(Protocol):
    """What the bridge needs from the engine (``snapcdc_local.engine.engine.AthenaEngine``)."""

    def execute(
        self, sql: str, database: str | None = None, output_path: str | None = None
    ) -> Any: ...


def statement_type(sql: str) -> tuple[str, str]:
    """Athena's ``StatementType`` and ``SubstatementType`` of a query, read from the statement
    as the engine parses it (``parse_statement``), so the bridge and the engine never disagree
    on what a statement is (the engine runs an ``exp.Query`` as DML, anything else as DDL).
    A statement the engine cannot parse fails when it runs, with the engine's message.

    >>> statement_type("  create external table x (a string)")
    ('DDL', 'CREATE_TABLE')
    >>> statement_type("WITH a AS (SELECT 1) SELECT * FROM a")
    ('DML', 'SELECT')
    >>> statement_type("CREATE DATABASE IF NOT EXISTS d")
    ('DDL', 'CREATE_DATABASE')
    """
    try:
        statement = parse_statement(sql)
    except EngineError:
        return "DML", "SELECT"
    if isinstance(statement, exp.Query):
        return "DML", "SELECT"
    for node, verb in DDL_VERBS.items():
        if isinstance(statement, node):
            kind = str(statement.args.get("kind") or "").upper()
            kind = {"SCHEMA": "DATABASE"}.get(kind, kind)
            return "DDL", f"{verb}_{kind}" if kind else verb
    return "DML", type(statement).__name__.upper()


class AthenaBridge:
    """Runs Athena queries on ``engine``; see the module docstring.

    ``engine`` is built lazily by ``engine_factory(resolve_location)`` where
    ``resolve_location(s3_uri) -> [TableFile or local path]`` gives the files a LOCATION holds.
    """

    def __init__(
        self,
        engine_factory: Callable[[Callable[[str], Sequence[Any]]], EngineLike],
        resolve_location: Callable[[str], Sequence[Any]],
        region: str,
        account_id: str,
        workers: int = 1,
        authorizer: iam.Authorizer | None = None,
        start_wait: float = START_WAIT_SECONDS,
    ) -> None:
        self.start_wait = start_wait
        self.engine_factory = engine_factory
        self.resolve_location = resolve_location
        self.authorizer = authorizer
        self.region = region
        self.account_id = account_id
        self.executions: dict[str, QueryExecution] = {}
        self._engine: EngineLike | None = None
        self._engine_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="athena")
        self._futures: dict[str, Any] = {}
        self._known_databases: set[str] = set()
        self._scratch = tempfile.TemporaryDirectory(prefix="snapcdc-athena-")
        # Fault injection: refuse the next N StartQueryExecution calls as Athena does when the
        # account's active-query quota is reached (TooManyRequestsException), see
        # https://docs.aws.amazon.com/athena/latest/ug/service-limits.html
        self.throttle_starts = 0
        self.workgroups = Workgroups()
        self.api: AthenaApi | None = None

    @property
    def engine(self) -> EngineLike:
        with self._engine_lock:
            if self._engine is None:
                self._engine = self.engine_factory(self.resolve_location)
            return self._engine

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        close = getattr(self._engine, "close", None)
        if callable(close):
            close()
        self._scratch.cleanup()

    # -- moto hook -----------------------------------------------------------------------

    @contextmanager
    def installed(self, session: Any) -> Iterator[AthenaBridge]:
        """Athena's API answered by this bridge and its workgroups, in either wire protocol
        (:mod:`.athena_api`), for clients created from ``session`` and a served endpoint."""
        api = AthenaApi(
            {
                "StartQueryExecution": self.start_query_execution,
                "GetQueryExecution": self.get_query_execution,
                "BatchGetQueryExecution": self.batch_get_query_execution,
                "GetQueryResults": self.get_query_results,
                "StopQueryExecution": self.stop_query_execution,
                "ListQueryExecutions": self.list_query_executions,
                "CreateWorkGroup": self.workgroups.create_work_group,
                "GetWorkGroup": self.workgroups.get_work_group,
                "ListWorkGroups": self.workgroups.list_work_groups,
                "UpdateWorkGroup": self.workgroups.update_work_group,
                "DeleteWorkGroup": self.workgroups.delete_work_group,
            }
        )
        with api.installed(session):
            self.api = api
            try:
                yield self
            finally:
                self.close()

    # -- API -----------------------------------------------------------------------------

    def start_query_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._engine_lock:
            throttled, self.throttle_starts = (
                self.throttle_starts > 0,
                max(0, self.throttle_starts - 1),
            )
        if throttled:
            raise AthenaRequestError(
                "You have exceeded the limit for the number of queries you can run concurrently. "
                "Please reduce the number of concurrent queries submitted by this account. "
                "Contact customer support to request a concurrent query limit increase.",
                "TooManyRequestsException",
            )
        sql = params.get("QueryString")
        if not sql or not isinstance(sql, str):
            raise AthenaRequestError("QueryString is required", "ValidationException")
        if len(sql.encode("utf-8")) > MAX_QUERY_BYTES:
            raise AthenaRequestError(
                "'queryString' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_QUERY_BYTES}"
            )
        if params.get("ExecutionParameters"):
            raise AthenaRequestError("ExecutionParameters are not supported by the embedded engine")
        workgroup_name = params.get("WorkGroup") or "primary"
        config = self.workgroups.configuration(workgroup_name)
        wg_output = (config.get("ResultConfiguration") or {}).get("OutputLocation")
        request_output = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        enforce = config.get("EnforceWorkGroupConfiguration", True)
        output = (wg_output if enforce and wg_output else request_output or wg_output) or ""
        if not output:
            raise AthenaRequestError(
                "No output location provided. An output location is required either through "
                "the Workgroup result configuration setting or as an API input."
            )
        context = params.get("QueryExecutionContext") or {}
        kind, sub = statement_type(sql)
        query_id = str(uuid.uuid4())
        suffix = ".txt" if kind == "DDL" else ".csv"
        execution = QueryExecution(
            id=query_id,
            query=sql,
            database=context.get("Database"),
            catalog=context.get("Catalog") or "AwsDataCatalog",
            workgroup=workgroup_name,
            output_location=output.rstrip("/") + f"/{query_id}{suffix}",
            statement_type=kind,
            substatement_type=sub,
            principal=iam.current(),
        )
        self.executions[query_id] = execution
        future = self._futures[query_id] = self._pool.submit(self._run, execution)
        if self.start_wait > 0:
            futures.wait([future], timeout=self.start_wait)
        return {"QueryExecutionId": query_id}

    def _get(self, query_id: Any) -> QueryExecution:
        execution = self.executions.get(query_id) if isinstance(query_id, str) else None
        if execution is None:
            raise AthenaRequestError(f"QueryExecution {query_id} was not found")
        return execution

    def get_query_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"QueryExecution": self._get(params.get("QueryExecutionId")).to_api()}

    def batch_get_query_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        found, missing = [], []
        for query_id in params.get("QueryExecutionIds") or []:
            if query_id in self.executions:
                found.append(self.executions[query_id].to_api())
            else:
                missing.append(
                    {
                        "QueryExecutionId": query_id,
                        "ErrorCode": "INVALID_INPUT",
                        "ErrorMessage": "not found",
                    }
                )
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def list_query_executions(self, params: dict[str, Any]) -> dict[str, Any]:
        workgroup = params.get("WorkGroup") or "primary"
        ids = [
            e.id
            for e in sorted(self.executions.values(), key=lambda e: -e.submitted)
            if e.workgroup == workgroup
        ]
        return {"QueryExecutionIds": ids}

    def stop_query_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        execution = self._get(params.get("QueryExecutionId"))
        future = self._futures.get(execution.id)
        if execution.state == "QUEUED" and future is not None and future.cancel():
            execution.state, execution.completed = "CANCELLED", time.time()
            execution.reason = "Query was cancelled by user"
        return {}

    def get_query_results(self, params: dict[str, Any]) -> dict[str, Any]:
        execution = self._get(params.get("QueryExecutionId"))
        if execution.state in ("QUEUED", "RUNNING"):
            raise AthenaRequestError(
                f"Query has not yet finished. Current state: {execution.state}"
            )
        if execution.state != "SUCCEEDED":
            raise AthenaRequestError(
                f"Query did not finish successfully. Final query state: {execution.state}"
            )
        max_results = params.get("MaxResults", MAX_RESULTS)
        if not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
            raise AthenaRequestError(
                f"MaxResults must be between 1 and {MAX_RESULTS}", "ValidationException"
            )
        rows = self._result_rows(execution)
        token = params.get("NextToken")
        start = decode_token(token, execution.id) if token else 0
        page = rows[start : start + max_results]
        result: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": [
                    {"Data": [{"VarCharValue": v} if v is not None else {} for v in row]}
                    for row in page
                ],
                "ResultSetMetadata": {
                    "ColumnInfo": [column_info(n, t) for n, t in execution.columns]
                },
            },
        }
        if start + max_results < len(rows):
            result["NextToken"] = encode_token(start + max_results, execution.id)
        return result

    # -- running -------------------------------------------------------------------------

    def _run(self, execution: QueryExecution) -> None:
        execution.state, execution.started = "RUNNING", time.time()
        local = Path(self._scratch.name) / f"{execution.id}.csv"
        try:
            bucket, key = split_s3_uri(execution.output_location)
            s3 = boto3.client("s3", region_name=self.region)
            try:
                s3.head_bucket(Bucket=bucket)
                self._require(execution, output_requirements(execution.output_location))
            except Exception as exc:
                denied = iam.denial_message(exc)
                detail = f": {denied}" if denied else ""
                raise RuntimeError(
                    f"Unable to verify/create output bucket {bucket}{detail}"
                ) from None
            self._require_catalog(execution)
            self._sync_databases()
            with iam.acting(execution.principal):  # the engine reads LOCATIONs as the caller
                result = self.engine.execute(
                    execution.query, database=execution.database, output_path=str(local)
                )
            execution.scanned_bytes = int(getattr(result, "data_scanned_bytes", 0) or 0)
            execution.columns = columns_of(getattr(result, "columns", None))
            if not local.exists():
                local.write_text("")
            self._write_result(execution, s3, local, bucket, key)
            if execution.statement_type == "DDL":
                try:
                    mirror_ddl(execution, self.account_id, self.region)
                except Exception:  # the catalog copy is a convenience, the query did run
                    log.warning("could not mirror DDL of %s into Glue", execution.id, exc_info=True)
            execution.state = "SUCCEEDED"
        except Exception as exc:  # the engine's message is the query's failure reason
            execution.state = "FAILED"
            execution.reason = str(exc) or type(exc).__name__
            log.info("Athena query %s failed: %s", execution.id, execution.reason)
        finally:
            execution.completed = time.time()
            local.unlink(missing_ok=True)

    def _require(self, execution: QueryExecution, needed: list[tuple[str, str]]) -> None:
        if self.authorizer is not None:
            self.authorizer.require(execution.principal, needed)

    def _require_catalog(self, execution: QueryExecution) -> None:
        """Athena checks the caller's Glue permissions for the statement before running it."""
        where = Where(self.region, self.account_id)
        try:
            self._require(
                execution, catalog_requirements(execution.query, execution.database, where)
            )
        except iam.AccessDenied as exc:
            # The reason as Athena reports a Glue denial (see apache/kyuubi#4952).
            raise RuntimeError(
                f"Insufficient permissions to execute the query. {exc} (Service: AWSGlue; "
                "Status Code: 400; Error Code: AccessDeniedException)"
            ) from None

    def _write_result(
        self, execution: QueryExecution, s3: Any, local: Path, bucket: str, key: str
    ) -> None:
        try:
            with iam.acting(execution.principal):
                s3.upload_file(str(local), bucket, key)
        except Exception as exc:
            denied = iam.denial_message(exc)
            if not denied:
                raise
            raise RuntimeError(
                f"Access denied when writing output to url: {execution.output_location} . "
                f"Please ensure you are allowed to access the S3 bucket. {denied}"
            ) from None

    def _sync_databases(self) -> None:
        """Athena sees every Glue database, also those created outside Athena (CloudFormation)."""
        from moto.glue.models import glue_backends

        for name in list(glue_backends[self.account_id][self.region].databases):
            # Glue names are lowercase letters, digits and '_'; anything else never reaches SQL.
            if name not in self._known_databases and re.fullmatch(r"[a-z0-9_]{1,255}", name):
                self.engine.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
                self._known_databases.add(name)

    def _result_rows(self, execution: QueryExecution) -> list[list[str | None]]:
        if execution.rows is None:
            if execution.statement_type == "DDL":
                execution.rows = []
            else:
                # the pipeline's own reader of Athena's result CSV (snapcdc.aws.result_files)
                s3 = boto3.client("s3", region_name=self.region)
                execution.rows = read_all(s3, execution.output_location)
        return execution.rows
