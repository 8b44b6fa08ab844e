"""Runtime configuration of the Lambda functions, read from environment variables.

Every function of the stack gets the same variables (cfn.yaml repeats one block), and they are
read at invocation time, so one process can host every handler (the local emulation does).

>>> s = Settings.from_env({"SNAPCDC_REGISTRY_TABLE": "reg", "SNAPCDC_LOCK_EXPIRY_SECONDS": "60"})
>>> (s.registry_table, s.lock_expiry_seconds, s.query_poll_seconds)
('reg', 60, 5)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


class SettingsError(ValueError):
    """A configuration variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    import_bucket: str = ""
    registry_table: str = ""
    lock_table: str = ""
    target_table: str = ""
    stream_name: str = ""
    athena_workgroup: str = "primary"
    athena_output: str = ""  # s3://bucket/prefix/ the workgroup enforces
    glue_database_prefix: str = "snapcdc_"
    lock_expiry_seconds: int = 21900
    lock_retry_seconds: int = 30
    lock_max_attempts: int = 120
    query_poll_seconds: int = 5
    # How long the query Lambda waits in process before handing over to the Wait loop.
    query_start_wait_seconds: float = 2.0
    # The publisher returns when less than this is left of its invocation.
    publish_reserve_millis: int = 30000
    # Upper bound of ops one publish invocation sends (the rest goes to the next page).
    publish_max_records: int = 1_000_000
    # Attempts in a row in which Kinesis takes none of the records it refused (throttling),
    # with backoff up to 5 s apart, before the version fails; any progress resets the count.
    publish_max_retries: int = 10
    # How full the publisher fills an aggregated Kinesis record (bytes, at most the 1 MiB record
    # limit). Smaller than the limit, as the KPL's default (50 KB) is: a PutRecords call of 5 MiB
    # then reaches up to 80 shards instead of 5, and a throttled shard refuses 64 KiB, not 1 MiB,
    # while the ops per second a shard takes stay the same (bytes are the limit either way).
    publish_record_bytes: int = 64 * 1024
    # Conditional writes the consumer keeps in flight at once: ~3,200 writes/s at ~5 ms each,
    # one shard's ~2,900 ops/s, under a new on-demand table's 4,000 write units/s; the
    # per-partition 1,000/s binds only on a hot row, the items spreading by pk
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html).
    consumer_workers: int = 16
    # The event source mapping's MaximumRecordAgeInSeconds (snapcdc.steps.applied_check).
    consumer_max_record_age_seconds: int = 86400
    # The target table's ARN: what a verify exports (snapcdc.steps.verify).
    target_table_arn: str = ""
    # How long a verify holds a table still before and after it asks for the export: an export
    # may or may not hold what changed within a minute of the request
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.HowItWorks.html).
    verify_settle_seconds: int = 60
    # The lease of a verify's table lock: the settle waits and the export request fit in it; a
    # verify that dies holds its tables no longer than this.
    verify_lock_seconds: int = 900

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f"SNAPCDC_{f.name.upper()}"
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = type(f.default)(raw)
            except ValueError:
                raise SettingsError(
                    f"{name}={raw!r} is not a valid {type(f.default).__name__}"
                ) from None
        return cls(**values)

    def require(self, *names: str) -> Settings:
        """Raise SettingsError naming the first of ``names`` that is not configured."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"SNAPCDC_{name.upper()} is not set")
        return self
