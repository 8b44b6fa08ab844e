"""The clock and the one way times are written (as Step Functions writes them).

>>> from datetime import datetime, UTC
>>> iso(datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC))
'2026-12-08T01:02:03.456Z'
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, the way Step Functions writes times."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
