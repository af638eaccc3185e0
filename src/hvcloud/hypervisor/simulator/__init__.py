"""hvcloud.hypervisor.simulator."""
