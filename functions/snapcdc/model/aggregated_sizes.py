"""What Kinesis counts for a KPL aggregated record that carries one op alone.

The format (https://github.com/awslabs/amazon-kinesis-producer/blob/master/aggregation-format.md):
a magic number, a protobuf ``AggregatedRecord`` (a partition key table, an explicit hash key
table, the user records), then the MD5 of the protobuf; Kinesis counts the data plus the
record's partition key against its 1 MiB limit
(https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecordsRequestEntry.html).
The publisher's aggregates (``snapcdc.aws.aggregation``) and the export check's size bound
(``snapcdc.model.limits``) both count with these.

>>> varint_bytes(127), varint_bytes(128), varint_bytes(1024 * 1024)
(1, 2, 3)
"""

from __future__ import annotations

import aws_kinesis_agg

MAGIC = aws_kinesis_agg.MAGIC
DIGEST_BYTES = aws_kinesis_agg.DIGEST_SIZE
# ExplicitHashKey: "0|([1-9]\d{0,38})", a 128-bit integer in decimal
# (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecordsRequestEntry.html)
LONGEST_HASH_KEY = 39


def varint_bytes(value: int) -> int:
    """Bytes of a protobuf varint."""
    return max(1, (value.bit_length() + 6) // 7)


def single_record_bytes(data: int, partition_key: int, hash_key: int = LONGEST_HASH_KEY) -> int:
    """What Kinesis counts for the record that carries one user record alone (``data`` and
    ``partition_key`` bytes): the magic number, the protobuf (each table's one entry, the user
    record with its two indexes and data), the digest, and the record's partition key."""
    user_record = 2 + 2 + 1 + varint_bytes(data) + data  # partition and hash key index, data
    body = (
        1 + varint_bytes(partition_key) + partition_key
        + 1 + varint_bytes(hash_key) + hash_key
        + 1 + varint_bytes(user_record) + user_record
    )  # fmt: skip
    return len(MAGIC) + body + DIGEST_BYTES + partition_key
