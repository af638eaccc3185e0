"""The one hierarchy of errors raised on purpose on a host: by the agent, a driver or storage.

Every one of them becomes an in-band ``result:false`` answer whose details are the message, so each
message is written for an operator. Drivers raise :class:`~hvcloud.hypervisor.driver.DriverError`
and its kinds, storage raises :class:`~hvcloud.storage.errors.StorageError` and its kinds, and a
command whose content the agent will not act on (a bad VM name, an unknown disk format, a VLAN out
of range) is an :class:`InvalidRequest`. This module imports nothing from hvcloud, so every layer
on the host may use it.
"""

from __future__ import annotations


class HostError(Exception):
    """Base of every error the agent, a driver or storage raises on purpose."""


class InvalidRequest(HostError):
    """A command's content is invalid: refused before anything is done on the host."""
