"""S3 locations: splitting an ``s3://`` URI, and which objects under a table's LOCATION are data.

Athena reads every object under a table's LOCATION, sub-folders included
(https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html), except hidden
ones: its Hive connector (Trino's) skips a file when any part of its path below the location
starts with ``_`` or ``.``, the Hadoop convention for hidden files such as ``_SUCCESS`` or
``.crc`` (``isHiddenOrWithinHiddenParentDirectory`` in Trino's
plugin/trino-hive/src/main/java/io/trino/plugin/hive/fs/HiveFileIterator.java). The AWS page
names no such exception, so the pipeline never relies on it; it is the one rule the
embedded readers apply: the
engine and the emulation list tables by it, and the export contract keeps data files out of
it (a file name starts with a letter or digit; ``_table.json`` and ``_manifest.json`` are
hidden on purpose, so no table ever reads them as rows).

>>> split_s3_uri("s3://results/athena/q1.csv")
('results', 'athena/q1.csv')
>>> split_s3_uri("s3://bucket")
('bucket', '')
>>> is_hidden("t/v1/_SUCCESS", "t/v1/"), is_hidden("t/v1/part-0.csv.gz", "t/v1/")
(True, False)
>>> is_hidden("s3://b/t/v1/.tmp/part-0.csv.gz", "s3://b/t/v1")
True
"""

from __future__ import annotations

HIDDEN_PREFIXES = ("_", ".")


class S3UriError(ValueError):
    """Not an ``s3://bucket[/key]`` URI."""


def split_s3_uri(uri: object) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; the key may be empty or a prefix."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3UriError(f"not an s3://bucket/key location: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise S3UriError(f"S3 location without a bucket: {uri!r}")
    return bucket, key


def object_uri(uri: object) -> tuple[str, str]:
    """``(bucket, key)`` of one object's URI: like :func:`split_s3_uri`, with a key."""
    bucket, key = split_s3_uri(uri)
    if not key or key.endswith("/"):
        raise S3UriError(f"not the location of an S3 object: {uri!r}")
    return bucket, key


def is_hidden(key: str, location: str) -> bool:
    """Whether a table at ``location`` skips the object ``key`` (both as keys or both as
    ``s3://`` URIs): some part of its path below the location starts with ``_`` or ``.``. A
    folder marker (a key ending in ``/``) holds no data either."""
    prefix = location if not location or location.endswith("/") else location + "/"
    relative = key[len(prefix) :] if key.startswith(prefix) else key.rsplit("/", 1)[-1]
    parts = relative.split("/")
    return key.endswith("/") or any(part.startswith(HIDDEN_PREFIXES) for part in parts)
