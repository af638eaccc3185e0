"""A strict in-memory model of Hyper-V's WMI v2 classes, for running the driver without Windows."""

from tests.support.hyperv_fake.model import Guest, HyperVModel, ModelConnection, ModelObject
from tests.support.hyperv_fake.types import (
    SchemaViolation,
    UnknownClass,
    UnknownMethod,
    UnknownProperty,
    WrongType,
)

__all__ = ["Guest", "HyperVModel", "ModelConnection", "ModelObject", "SchemaViolation",
           "UnknownClass", "UnknownMethod", "UnknownProperty", "WrongType"]
