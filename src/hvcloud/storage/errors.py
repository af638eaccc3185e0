"""Errors of the storage layer; each message is meant for an operator."""

from __future__ import annotations

from hvcloud.host_errors import HostError


class StorageError(HostError):
    """Base of every storage error raised on purpose."""


class ImageError(StorageError):
    """A disk image is malformed, unsafe or of the wrong format."""


class PathOutsidePool(StorageError):
    """A path from the wire escapes the pool it must stay in."""


class StoreError(StorageError):
    """An image store (local, HTTP, S3) refused or failed a transfer."""


class DownloadError(StoreError):
    """An image could not be fetched from a URL or an image store, or was refused on the way."""


class UnsafeUrl(DownloadError):
    """A URL that downloads may not use: its scheme, form or addresses break the rules."""


class SizeLimitExceeded(DownloadError):
    pass


class ChecksumMismatch(DownloadError):
    pass
