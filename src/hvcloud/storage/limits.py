"""What one image transfer may cost: bytes, time, redirects, and which addresses it may reach."""

from __future__ import annotations

from dataclasses import dataclass

from hvcloud.storage.url_rules import UrlPolicy

#: agents fetch from the image stores the management server names, which live on private or
#: loopback networks; link-local, multicast and reserved addresses stay refused
AGENT_URL_POLICY = UrlPolicy(allow_private=True, allow_loopback=True)


@dataclass(frozen=True)
class DownloadLimits:
    """The bounds of one HTTP(S) download."""

    max_bytes: int
    connect_timeout: float = 15.0
    read_timeout: float = 120.0
    total_seconds: float = 6 * 3600.0
    max_redirects: int = 5


@dataclass(frozen=True)
class StoreLimits:
    """The bounds of every transfer between a host and its image stores (HTTP, S3, directories)."""

    max_image_bytes: int = 1 << 40
    http_connect_timeout: float = 10.0
    http_read_timeout: float = 60.0
    http_total_seconds: float = 6 * 3600.0
    max_redirects: int = 5
    url_policy: UrlPolicy = AGENT_URL_POLICY
    s3_part_size: int = 16 << 20
    s3_concurrency: int = 8
    s3_retries: int = 3

    def download(self) -> DownloadLimits:
        return DownloadLimits(max_bytes=self.max_image_bytes, connect_timeout=self.http_connect_timeout,
                              read_timeout=self.http_read_timeout, total_seconds=self.http_total_seconds,
                              max_redirects=self.max_redirects)
