"""The driver's parts (issue 20, Shape): one shared session, one copy of each WMI helper, and the
Driver interface kept on HyperVDriver."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from hvcloud.hypervisor.driver import Driver
from hvcloud.hypervisor.hyperv import session
from hvcloud.hypervisor.hyperv.driver import HyperVDriver
from hvcloud.hypervisor.hyperv.session import Part, WmiSession

#: the helpers every part uses; only session.py may define them (images.py is the storage
#: backend's stand-alone image management client, made with its own cancel event, not a part)
SHARED = {"call", "call_once", "resulting", "policy", "service", "vsms", "default", "find_vssd",
          "find_vm", "vssd", "resources", "refresh", "request", "add_resource"}


def test_only_the_session_defines_the_shared_wmi_helpers() -> None:
    package = Path(session.__file__).parent
    for path in sorted(package.glob("*.py")):
        if path.name in ("session.py", "images.py"):
            continue
        defined = {node.name.lstrip("_") for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.FunctionDef)}
        assert not defined & SHARED, f"{path.name} defines its own {sorted(defined & SHARED)}"


def test_every_part_works_over_the_drivers_one_session(driver: HyperVDriver) -> None:
    parts = [value for value in vars(driver).values() if isinstance(value, Part)]
    assert len(parts) == 7
    shared = driver._session
    assert isinstance(shared, WmiSession)
    for part in parts:
        assert part._session is shared
        assert part._call.__self__ is shared


def test_the_driver_keeps_every_driver_method_with_its_signature() -> None:
    for name, member in inspect.getmembers(Driver, inspect.isfunction):
        if name.startswith("_"):
            continue
        mine = getattr(HyperVDriver, name)
        assert list(inspect.signature(mine).parameters) == \
            list(inspect.signature(member).parameters), name
