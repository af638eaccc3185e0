"""Fixed catalogues: hypervisor types and storage providers the server knows."""

from __future__ import annotations

HYPERVISORS = ("Hyperv", "KVM", "Simulator")
PRIMARY_PROVIDERS = ("DefaultPrimary",)
IMAGE_PROVIDERS = ("NFS", "S3", "SMB")
