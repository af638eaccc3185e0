"""Precise kinds of VHD errors; all are :class:`ImageError` so callers can catch one type."""

from __future__ import annotations

from hvcloud.storage.errors import ImageError


class VhdError(ImageError):
    """Base of every error raised by :mod:`hvcloud.storage.vhd`."""


class CorruptImage(VhdError):
    """The file is not a well-formed VHD (bad magic, checksum, BAT, truncation …)."""


class UnsupportedImage(VhdError):
    """A valid-looking VHD that this library refuses to handle (absurd size, saved state …)."""


class ChainError(VhdError):
    """A differencing chain cannot be resolved."""


class ParentNotFound(ChainError):
    pass


class ParentMismatch(ChainError):
    """The file found as parent is not the disk the child was made from."""


class ParentLoop(ChainError):
    pass


class OperationRefused(VhdError):
    """The operation would lose data or break other disks (has children, saved state, shrink …)."""
