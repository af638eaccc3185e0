"""hvcloud: a cloud control plane and hypervisor host agent speaking CloudStack's Hyper-V protocol."""

__version__ = "0.1.0"
