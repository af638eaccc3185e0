"""A strict in-memory model of Hyper-V's WMI v2 classes, for running the driver without Windows."""

from hvcloud.hypervisor.hyperv.fake.model import Guest, HyperVModel, ModelConnection, ModelObject
from hvcloud.hypervisor.hyperv.fake.types import (
    SchemaViolation,
    UnknownClass,
    UnknownMethod,
    UnknownProperty,
    WrongType,
)

__all__ = ["Guest", "HyperVModel", "ModelConnection", "ModelObject", "SchemaViolation",
           "UnknownClass", "UnknownMethod", "UnknownProperty", "WrongType"]
