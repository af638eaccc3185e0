"""hvcloud.hypervisor.libvirt: the KVM/QEMU driver on libvirt-python (see ``driver``)."""
