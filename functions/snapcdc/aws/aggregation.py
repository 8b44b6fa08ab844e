"""Kinesis records in the KPL aggregated record format, many ops to a record.

A Kinesis record costs a shard one of its 1,000 records a second however small it is, so the
publisher packs many ops (user records) into one record, in the format of the Kinesis Producer
Library (https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md:
a magic number, a protobuf ``AggregatedRecord`` with a partition key table, an explicit hash key
table and the user records, then the MD5 of the protobuf), built and read with the
``aws-kinesis-agg`` package's protobuf schema, so that the KCL and other tools read the stream
too. Lambda hands aggregated records to the function as they are; deaggregating is the
function's work (https://docs.aws.amazon.com/streams/latest/dev/kinesis-record-deaggregation.html).

Every user record keeps its own partition key (``tenant/table|rowkey``) and carries the explicit
hash key of the record it is in: the KCL drops a user record whose hash key is outside the
shard the record was read from (it does so to handle resharding), so an op's effective hash key
must be the record's.

The size Kinesis counts against its 1 MiB record limit is the data plus the record's partition
key (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecordsRequestEntry.html);
the record's partition key is its first user record's, as the KPL does.

>>> agg = Aggregate(limit=1024, hash_key="7")
>>> agg.add("t|PK1", b'{"op":"INSERT"}'), agg.add("t|PK2", b'{"op":"DELETE"}')
(True, True)
>>> entry = agg.entry()
>>> entry["PartitionKey"], entry["ExplicitHashKey"], record_bytes(entry) == agg.size
('t|PK1', '7', True)
>>> [(pk, data) for pk, data in deaggregate(entry["Data"])]
[('t|PK1', b'{"op":"INSERT"}'), ('t|PK2', b'{"op":"DELETE"}')]
>>> deaggregate(b'{"op":"INSERT"}') is None  # a plain record
True

The sizes (``snapcdc.model.aggregated_sizes``) are those of the records built here:

>>> agg = Aggregate(limit=1024 * 1024, hash_key="1" * 39)
>>> agg.add("p" * 200, b"x" * 5000)
True
>>> single_record_bytes(5000, 200) == record_bytes(agg.entry())
True
"""

from __future__ import annotations

import hashlib
from typing import Any

# messages_pb2 imports its sibling config_pb2 as a top-level module, which works only once the
# aggregator module has put the package's folder on sys.path: take it from there.
from aws_kinesis_agg.aggregator import AggRecord, messages_pb2

from snapcdc.model.aggregated_sizes import DIGEST_BYTES, MAGIC, single_record_bytes


class AggregationError(ValueError):
    """A record starts with the aggregation magic number but is not a valid aggregated record."""


def record_bytes(entry: dict[str, Any]) -> int:
    """A PutRecords entry's size as Kinesis counts it: data + partition key (UTF-8)."""
    return len(entry["Data"]) + len(entry["PartitionKey"].encode())


class Aggregate:
    """One aggregated record being filled, up to ``limit`` bytes as Kinesis counts them.

    ``aws_kinesis_agg.AggRecord`` does the packing; keys are given to it as bytes, because it
    looks keys up by the type it is given and stores them by the one it was called with (with
    str keys it counts a repeated hash key again for every user record, ~40 bytes each).
    """

    def __init__(self, limit: int, hash_key: str) -> None:
        self.limit = limit
        self.hash_key = hash_key
        self._hash_key = hash_key.encode()
        self._record: AggRecord | None = None
        self._partition_key = ""
        self.count = 0

    @property
    def size(self) -> int:
        if self._record is None:
            return 0
        return self._record.get_size_bytes() + len(self._partition_key.encode())

    def add(self, partition_key: str, data: bytes) -> bool:
        """Add a user record; False when it does not fit (the record is then unchanged). The
        first user record always goes in (the caller checked it fits a record alone)."""
        key = partition_key.encode()
        if self._record is None:
            alone = single_record_bytes(len(data), len(key), len(self._hash_key))
            # the record's partition key counts against the limit too: it is the first one's
            self._record = AggRecord(max(self.limit, alone) - len(key))
            self._partition_key = partition_key
        try:
            added = self._record.add_user_record(key, data, self._hash_key)
        except ValueError:  # larger alone than this record's limit: it goes in a record of its own
            if not self.count:
                raise
            added = False
        if not added:
            return False
        self.count += 1
        return True

    def entry(self) -> dict[str, Any]:
        """The PutRecords entry of the record."""
        if self._record is None:
            raise ValueError("an empty aggregate has no record")
        _, _, data = self._record.get_contents()
        return {
            "Data": data,
            "PartitionKey": self._partition_key,
            "ExplicitHashKey": self.hash_key,
        }


def deaggregate(data: bytes) -> list[tuple[str, bytes]] | None:
    """``(partition key, data)`` of every user record of an aggregated record, in order; None
    for a plain record. Raises AggregationError for a record with the magic number whose digest
    or protobuf is wrong, instead of treating it as plain (or, as ``aws_kinesis_agg``'s
    deaggregator does on a bad index, printing the error and stopping part way)."""
    if not data.startswith(MAGIC):
        return None
    body, digest = data[len(MAGIC) : -DIGEST_BYTES], data[-DIGEST_BYTES:]
    if len(data) < len(MAGIC) + DIGEST_BYTES or hashlib.md5(body).digest() != digest:  # noqa: S324
        raise AggregationError("aggregated record with a wrong MD5 digest (corrupt or truncated)")
    message = messages_pb2.AggregatedRecord()
    try:
        message.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError
        raise AggregationError(f"aggregated record whose protobuf does not parse: {exc}") from None
    keys = list(message.partition_key_table)
    records = []
    for position, record in enumerate(message.records):
        if record.partition_key_index >= len(keys):
            raise AggregationError(
                f"user record {position} names partition key {record.partition_key_index} "
                f"of a table of {len(keys)}"
            )
        records.append((keys[record.partition_key_index], record.data))
    return records
