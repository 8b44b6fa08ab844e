"""S3 prefixes as local files, for the engine that reads what Athena would read.

Athena "reads all data stored in the Amazon S3 folder that you specify" as a table's
``LOCATION`` (https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html), at query
time and under sub-folders too, skipping hidden objects (``snapcdc.model.s3paths.is_hidden``,
such as ``_table.json``). :class:`S3Files` copies those objects from moto's S3 into a directory
(again only when an object changed) and answers with their local paths and their ``s3://`` URIs
(what ``"$path"`` shows), in key order.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3

from snapcdc.model.s3paths import is_hidden, split_s3_uri
from snapcdc_local.engine.engine import TableFile


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
