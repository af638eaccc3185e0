"""hvcloud.hypervisor."""
