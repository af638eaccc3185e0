"""Storage on Hyper-V hosts: Windows and SMB pools, VHD/VHDX templates and differencing clones."""

from hvcloud.storage.hyperv.backend import HyperVStorageBackend, VirtualDisks
from hvcloud.storage.hyperv.winpath import PathMap

__all__ = ["HyperVStorageBackend", "PathMap", "VirtualDisks"]
