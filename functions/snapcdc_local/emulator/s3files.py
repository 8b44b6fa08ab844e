"""S3 prefixes as local files, for the engine that reads what Athena would read.

Athena "reads all data stored in the Amazon S3 folder that you specify" as a table's
``LOCATION`` (https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html), at query
time and under sub-folders too, skipping objects whose name starts with ``_`` or ``.`` (Hive's
hidden files, such as ``_table.json``). :class:`S3Files` copies those objects from moto's S3
into a directory (again only when an object changed) and answers with their local paths and
their ``s3://`` URIs (what ``"$path"`` shows), in key order.

>>> split_s3_uri("s3://bucket/a/b/")
('bucket', 'a/b/')
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3

from snapcdc_local.engine.engine import TableFile


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> ``(bucket, prefix)``; raise ValueError on anything else."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI without a bucket: {uri!r}")
    return bucket, prefix


def is_hidden(key: str, prefix: str) -> bool:
    """Hive skips files and directories whose name starts with ``_`` or ``.``.

    >>> is_hidden("t/v1/_SUCCESS", "t/v1/"), is_hidden("t/v1/part-0.csv.gz", "t/v1/")
    (True, False)
    """
    relative = key[len(prefix) :]
    return any(part.startswith(("_", ".")) for part in relative.split("/")) or key.endswith("/")


class S3Files:
    """Materialises S3 objects under ``root`` (``root/bucket/key``) and lists them."""

    def __init__(self, root: Path, region: str) -> None:
        self.root = Path(root)
        self._s3 = boto3.client("s3", region_name=region)
        self._etags: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def resolve(self, location: str) -> list[TableFile]:
        """The files an Athena table at ``location`` reads, in key order."""
        bucket, prefix = split_s3_uri(location)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        paths = []
        for obj in self._list(bucket, prefix):
            if not is_hidden(obj["Key"], prefix):
                local = str(self._fetch(bucket, obj))
                paths.append(TableFile(local, f"s3://{bucket}/{obj['Key']}"))
        return paths

    def _list(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            objects.extend(page.get("Contents", []))
        return sorted(objects, key=lambda o: o["Key"])

    def _fetch(self, bucket: str, obj: dict[str, Any]) -> Path:
        path = self.root / bucket / obj["Key"]
        with self._lock:
            if self._etags.get((bucket, obj["Key"])) != obj["ETag"] or not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                self._s3.download_file(bucket, obj["Key"], str(path))
                self._etags[(bucket, obj["Key"])] = obj["ETag"]
        return path
