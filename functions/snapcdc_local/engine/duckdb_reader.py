"""The engine's general reader: any OpenCSVSerde text file, read by DuckDB line by line.

One pass reads every line and splits the plain ones (tier 1); quoted lines are split
afterwards: by DuckDB's own CSV reader when the whole file is regular RFC 4180 with doubled
quotes (one more, fast pass), else by regular expressions (tier 2), and the rest by the Python
port of the SerDe (tier 3, :mod:`snapcdc_local.engine.opencsv`).
"""

# DuckDB SQL is assembled here from identifiers and literals quoted by ident / literal only.
# ruff: noqa: S608

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from snapcdc_local.engine.definitions import ExternalTable
from snapcdc_local.engine.opencsv import (
    NO_ESCAPE,
    compression,
    regular_line_patterns,
    split_line,
)
from snapcdc_local.engine.storage import FILE_COLUMN, char, literal

try:  # ISA-L inflates gzip about twice as fast as DuckDB's built-in reader
    from isal import igzip as _isal_gzip
except ImportError:  # pragma: no cover - optional accelerator
    _isal_gzip = None

# Lines are read as a single column; the "delimiter" is a byte sequence text never holds (a
# NUL alone may occur and is data to OpenCSVSerde).
LINE_DELIMITER = "chr(0) || chr(1) || chr(0)"
# gzip files at least this big are inflated with ISA-L (when installed) before DuckDB reads them.
FAST_GUNZIP_MIN_BYTES = 1 << 20
# (path, DuckDB compression) of one file to read
Source = tuple[str, str]


def read_files(
    con: duckdb.DuckDBPyConnection,
    storage: str,
    table: ExternalTable,
    files: list[str],
    native_read_min_lines: int,
) -> None:
    """Fill ``storage`` with the files' rows, tier by tier (see the module docstring).

    ``native_read_min_lines``: quoted lines at which re-reading regular files with DuckDB's CSV
    reader beats splitting them with regular expressions.
    """
    with tempfile.TemporaryDirectory(prefix="snapcdc-engine-") as scratch:
        _read_sources(con, storage, table, _sources(files, Path(scratch)), native_read_min_lines)


def create_empty(con: duckdb.DuckDBPyConnection, storage: str, column_count: int) -> None:
    """``storage`` as the reader leaves it for a LOCATION holding no files."""
    fields = ", ".join(f"NULL::VARCHAR AS c{i}" for i in range(column_count))
    con.execute(
        f"CREATE OR REPLACE TABLE {storage} AS "
        f"SELECT NULL::VARCHAR AS _raw, NULL::TINYINT AS _tier, {fields}, "
        f"NULL::INTEGER AS {FILE_COLUMN} LIMIT 0"
    )


def _read_sources(
    con: duckdb.DuckDBPyConnection,
    storage: str,
    table: ExternalTable,
    files: list[Source],
    native_read_min_lines: int,
) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {storage} AS {_split_sql(table, files)}")
    regular, irregular, with_nul = con.execute(
        "SELECT count(*) FILTER (_tier = 2), "
        "count(*) FILTER (_tier = 3), count(*) FILTER (_tier = 2 AND contains(_raw, chr(0))) "
        f"FROM {storage}"
    ).fetchone()
    native = not irregular and not with_nul and table.csv.escape == NO_ESCAPE
    if native and regular >= native_read_min_lines:
        blank = con.execute(
            f"SELECT {FILE_COLUMN}, count(*) FROM {storage} WHERE _tier = 0 GROUP BY 1"
        ).fetchall()
        con.execute(
            f"CREATE OR REPLACE TABLE {storage} AS {_native_sql(table, files, dict(blank))}"
        )
        return
    if regular:
        _split_regular(con, storage, table)
    if irregular:
        rows = con.execute(f"SELECT rowid, _raw FROM {storage} WHERE _tier = 3").fetchall()
        _fix_irregular(con, storage, table, rows)


def _fix_irregular(
    con: duckdb.DuckDBPyConnection, storage: str, table: ExternalTable, rows: list[tuple[int, str]]
) -> None:
    """Tier 3: lines the SQL tiers leave alone, split in Python exactly like Trino.

    The fields go back in one statement (Python lists unnested into a temporary table, then one
    UPDATE ... FROM), not row by row: a file can hold many such lines.
    """
    n = len(table.columns)
    fmt = table.csv
    split = [split_line(raw, n, fmt.separator, fmt.quote, fmt.escape) for _, raw in rows]
    columns = [list(column) for column in zip(*split, strict=True)]
    unnests = ", ".join(f"unnest(${i + 2}::VARCHAR[]) AS c{i}" for i in range(n))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _snapcdc_fix AS "
        f"SELECT unnest($1::BIGINT[]) AS rid, {unnests}",
        [[rowid for rowid, _ in rows], *columns],
    )
    assignments = ", ".join(f"c{i} = f.c{i}" for i in range(n))
    con.execute(
        f"UPDATE {storage} AS s SET {assignments} FROM _snapcdc_fix AS f WHERE s.rowid = f.rid"
    )
    con.execute("DROP TABLE _snapcdc_fix")


def _sources(files: list[str], scratch: Path) -> list[Source]:
    """What DuckDB reads for ``files``: big gzip files inflated by ISA-L into ``scratch``.

    The copy keeps the file's name, so errors name it as before. ISA-L, like DuckDB, reads
    concatenated gzip members; a file it cannot inflate is left to DuckDB (and its errors).
    """
    sources = []
    for i, path in enumerate(files):
        comp = compression(path)
        if comp == "gzip" and _isal_gzip is not None and _size(path) >= FAST_GUNZIP_MIN_BYTES:
            plain = scratch / str(i) / os.path.basename(path)
            plain.parent.mkdir()
            try:
                with _isal_gzip.open(path, "rb") as src, plain.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except Exception:  # DuckDB reads the file instead (and reports what is wrong)
                plain.unlink(missing_ok=True)
            else:
                sources.append((str(plain), "none"))
                continue
        sources.append((path, comp))
    return sources


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_csv(files: list[Source], select: str, options: str) -> list[str]:
    """``SELECT {select}, _file FROM read_csv(...)`` of ``files``, one per compression they
    use; ``_file`` is the row's file as its index in ``files``."""
    reads = []
    for comp in sorted({c for _, c in files}):
        paths = ", ".join(literal(f) for f, c in files if c == comp)
        index = " ".join(
            f"WHEN {literal(f)} THEN {i}" for i, (f, c) in enumerate(files) if c == comp
        )
        reads.append(
            f"SELECT {select}, CASE filename {index} END::INTEGER AS {FILE_COLUMN} "
            f"FROM read_csv([{paths}], {options}, compression = {literal(comp)}, filename = true)"
        )
    return reads


def _read_lines_sql(table: ExternalTable, files: list[Source]) -> str:
    """Every line of ``files`` as one column ``line`` (headers skipped per file).

    No quoting, and a "delimiter" no text holds; empty lines come through as NULL, which
    OpenCSVSerde also makes a row of NULLs.
    """
    options = (
        f"columns = {{'line': 'VARCHAR'}}, delim = {LINE_DELIMITER}, quote = '', escape = '', "
        f"header = false, auto_detect = false, skip = {table.header_lines}"
    )
    return " UNION ALL ".join(_read_csv(files, "line", options))  # line, _file


def _split_sql(table: ExternalTable, files: list[Source]) -> str:
    """The first pass: read every line, split the plain ones (tier 1), classify the others.

    ``_tier`` is 0 for an empty line, 2 for a regular quoted line, 3 for anything else (both
    keep their text in ``_raw``), NULL for a plain line.
    """
    fmt = table.csv
    n = len(table.columns)
    sep, quote, escape = char(fmt.separator), char(fmt.quote), char(fmt.escape)
    regular, _, _ = regular_line_patterns(fmt)
    fields = ", ".join(f"f[{i + 1}] AS c{i}" for i in range(n))
    return f"""
        SELECT CASE WHEN tier >= 2 THEN line END AS _raw,
               CASE WHEN tier <> 1 THEN tier END::TINYINT AS _tier,
               {fields}, {FILE_COLUMN}
        FROM (
            SELECT line, tier, {FILE_COLUMN},
                CASE WHEN tier = 1 THEN string_split(line, {sep}) END AS f
            FROM (
                SELECT line, {FILE_COLUMN},
                    CASE
                        WHEN line IS NULL THEN 0
                        WHEN NOT (contains(line, {quote}) OR contains(line, {escape})) THEN 1
                        WHEN regexp_full_match(line, {literal(regular)}) THEN 2
                        ELSE 3
                    END AS tier
                FROM ({_read_lines_sql(table, files)})
            )
        )
    """


def _native_sql(table: ExternalTable, files: list[Source], blank_lines: dict[int, int]) -> str:
    """All rows through DuckDB's CSV reader, for files whose every line is regular RFC 4180.

    On such lines it splits exactly as the SerDe does, given: no NULL string (an empty field is
    ''), quoted empty strings kept, missing fields NULL, fields past the extra column dropped.
    It skips empty lines, so their all-NULL rows are added back (``blank_lines``: how many
    each file holds, by its index).
    """
    fmt = table.csv
    n = len(table.columns)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n)) + "}"
    options = (
        f"columns = {columns}, delim = {char(fmt.separator)}, quote = {char(fmt.quote)}, "
        f"escape = {char(fmt.quote)}, header = false, auto_detect = false, "
        f"skip = {table.header_lines}, null_padding = true, nullstr = {LINE_DELIMITER}, "
        "allow_quoted_nulls = false, strict_mode = false"
    )
    reads = _read_csv(files, ", ".join(f"c{i}" for i in range(n)), options)
    nulls = ", ".join(f"NULL::VARCHAR AS c{i}" for i in range(n))
    for index, count in sorted(blank_lines.items()):
        reads.append(
            f"SELECT {nulls}, {int(index)}::INTEGER AS {FILE_COLUMN} FROM range({int(count)})"
        )
    rows = " UNION ALL ".join(reads)
    return f"SELECT NULL::VARCHAR AS _raw, NULL::TINYINT AS _tier, * FROM ({rows})"


def _split_regular(con: duckdb.DuckDBPyConnection, storage: str, table: ExternalTable) -> None:
    """Tier 2: regular quoted lines, split with regular expressions."""
    fmt = table.csv
    n = len(table.columns)
    sep, quote = char(fmt.separator), char(fmt.quote)
    _, field_re, pair_re = regular_line_patterns(fmt)
    decoded = (
        f"list_transform(regexp_extract_all({sep} || _raw, {literal(field_re)}, 1), "
        f"lambda x: CASE WHEN starts_with(x, {quote}) "
        f"THEN regexp_replace(x[2:-2], {literal(pair_re)}, '\\1', 'g') ELSE x END)"
    )
    assignments = ", ".join(f"c{i} = r.f[{i + 1}]" for i in range(n))
    con.execute(
        f"UPDATE {storage} AS s SET {assignments} "
        f"FROM (SELECT rowid AS rid, {decoded} AS f FROM {storage} WHERE _tier = 2) AS r "
        "WHERE s.rowid = r.rid"
    )
