"""Image stores in S3 buckets, for the management server and the agents alike: boto3 with
path-style addressing so S3-compatible servers (MinIO, Ceph RGW, moto) work, multipart transfers,
the size limit checked against the object's length before any byte moves, and checksums verified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from hvcloud.storage.backend import Progress, S3Location
from hvcloud.storage.errors import PathOutsidePool, StoreError
from hvcloud.storage.limits import StoreLimits
from hvcloud.storage.transfer import Checksum, ProgressLog, check_size, verify_file

#: what boto3 raises when S3 refuses or fails a request (upload_file wraps ClientError in a Boto3Error)
_S3_ERRORS = (ClientError, BotoCoreError, Boto3Error)


def s3_key(path: str) -> str:
    """An object key from a wire path, with the same rules as pool paths."""
    if not path or path.startswith("/") or "\x00" in path or "\\" in path or len(path) > 1024:
        raise PathOutsidePool(f"invalid object path {path!r}")
    if any(p in ("..", ".") for p in path.split("/")):
        raise PathOutsidePool(f"object path {path!r} has relative components")
    return path


def s3_client(loc: S3Location, limits: StoreLimits | None = None) -> Any:
    limits = limits or StoreLimits()
    endpoint = loc.endpoint if "://" in loc.endpoint else f"{'https' if loc.https else 'http'}://{loc.endpoint}"
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=loc.access_key,
        aws_secret_access_key=loc.secret_key, region_name=loc.region or "us-east-1",
        config=BotoConfig(s3={"addressing_style": "path"}, signature_version="s3v4",
                          connect_timeout=limits.http_connect_timeout,
                          read_timeout=limits.http_read_timeout,
                          retries={"max_attempts": limits.s3_retries, "mode": "standard"},
                          max_pool_connections=max(10, limits.s3_concurrency)),
    )


class S3Store:
    def __init__(self, loc: S3Location, limits: StoreLimits | None = None) -> None:
        self.limits = limits or StoreLimits()
        self.bucket = loc.bucket
        self.client = s3_client(loc, self.limits)

    def _transfer_config(self) -> TransferConfig:
        return TransferConfig(multipart_threshold=self.limits.s3_part_size,
                              multipart_chunksize=self.limits.s3_part_size,
                              max_concurrency=self.limits.s3_concurrency, use_threads=True)

    def get(self, rel: str, dest: Path, *, checksum: Checksum | None = None,
            progress: Progress | None = None) -> int:
        key = s3_key(rel)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
            size = int(head["ContentLength"])
            check_size(size, self.limits.max_image_bytes)
            prog = ProgressLog(f"s3://{self.bucket}/{key}", size, progress)
            self.client.download_file(self.bucket, key, str(dest), Config=self._transfer_config(), Callback=prog)
            prog.finish()
        except _S3_ERRORS as exc:
            raise StoreError(f"S3 download of {key} from {self.bucket} failed: {exc}") from None
        verify_file(dest, checksum)
        return size

    def put(self, src: Path, rel: str, progress: Progress | None = None) -> None:
        key = s3_key(rel)
        prog = ProgressLog(f"s3://{self.bucket}/{key}", src.stat().st_size, progress)
        try:
            self.client.upload_file(str(src), self.bucket, key, Config=self._transfer_config(), Callback=prog)
        except _S3_ERRORS as exc:
            raise StoreError(f"S3 upload of {rel} to {self.bucket} failed: {exc}") from None
        prog.finish()

    def put_bytes(self, data: bytes, rel: str) -> None:
        key = s3_key(rel)
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except _S3_ERRORS as exc:
            raise StoreError(f"S3 upload of {rel} to {self.bucket} failed: {exc}") from None

    def delete(self, rel: str) -> None:
        key = s3_key(rel)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except _S3_ERRORS as exc:
            raise StoreError(f"S3 delete of {rel} from {self.bucket} failed: {exc}") from None
