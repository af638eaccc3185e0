"""The host agent as a Windows service (pywin32), for Hyper-V hosts.

``install`` registers the service with the Service Control Manager (automatic start, restart on
failure), ``remove``/``start``/``stop`` do what they say. The service reads a JSON file of
:class:`~hvcloud.agent.config.AgentConfig` fields and runs ``hvcloud.agent.service.run_agent(config)``
in a daemon thread; a stop request ends the service process (the agent keeps no state it cannot
rebuild from Hyper-V, so that is safe). pywin32 is imported only on Windows; elsewhere this module
imports cleanly and every action raises :class:`NotSupported` with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from hvcloud.agent.config import AgentConfig, ConfigError, parse_networks
from hvcloud.hypervisor.driver import NotSupported

SERVICE_NAME = "hvcloud-agent"
DISPLAY_NAME = "hvcloud host agent"
DESCRIPTION = "Executes CloudStack agent commands (JSON over HTTPS on 8250) on this Hyper-V host."
SERVICE_CLASS = "hvcloud.agent.windows_service.AgentService"
RESTART_DELAY_MS = 60_000
RESET_PERIOD_S = 24 * 3600


@dataclass(frozen=True)
class WindowsPaths:
    config: PureWindowsPath
    data: PureWindowsPath
    logs: PureWindowsPath


def default_paths(program_data: str | None = None) -> WindowsPaths:
    """Where the agent keeps its config, state and logs: ``%ProgramData%\\hvcloud``."""
    root = PureWindowsPath(program_data or os.environ.get("PROGRAMDATA", "C:\\ProgramData"),
                           "hvcloud")
    return WindowsPaths(config=root / "agent.json", data=root / "data", logs=root / "logs")


def load_config(path: str) -> AgentConfig:
    """AgentConfig from a JSON object of its field names (paths as strings)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of agent settings")
    known = {f.name for f in dataclasses.fields(AgentConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {unknown}")
    data.setdefault("driver", "hyperv")
    data.setdefault("data_dir", str(default_paths().data))
    for key in ("data_dir", "client_ca", "certfile", "keyfile"):
        if isinstance(data.get(key), str):
            data[key] = Path(data[key])
    if "allow_from" in data:
        data["allow_from"] = parse_networks(list(data["allow_from"]))
    if "trusted_proxies" in data:
        data["trusted_proxies"] = parse_networks(list(data["trusted_proxies"]), "trusted_proxies")
    for key in ("pool_roots", "store_roots"):
        if key in data:
            data[key] = [Path(p) for p in data[key]]
    return AgentConfig(**data)


def _require_windows() -> None:
    if sys.platform != "win32":
        raise NotSupported("the Windows service needs Windows and pywin32")


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import servicemanager
    import win32event
    import win32service
    import win32serviceutil

    class AgentService(win32serviceutil.ServiceFramework):  # type: ignore[misc]
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args: list[str]) -> None:
            super().__init__(args)
            self._stop = threading.Event()
            self._wake = win32event.CreateEvent(None, 0, 0, None)

        def SvcStop(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self._stop.set()
            win32event.SetEvent(self._wake)

        def SvcDoRun(self) -> None:
            from hvcloud.agent.service import run_agent

            config = win32serviceutil.GetServiceCustomOption(
                SERVICE_NAME, "config", str(default_paths().config))
            servicemanager.LogInfoMsg(f"{SERVICE_NAME} starting with {config}")
            failure: list[BaseException] = []

            def target() -> None:
                try:
                    run_agent(load_config(config))
                except BaseException as exc:
                    failure.append(exc)
                finally:
                    win32event.SetEvent(self._wake)

            worker = threading.Thread(target=target, name="hvcloud-agent", daemon=True)
            worker.start()
            win32event.WaitForSingleObject(self._wake, win32event.INFINITE)
            self._stop.set()
            worker.join(timeout=60)
            if failure:
                servicemanager.LogErrorMsg(f"{SERVICE_NAME} failed: {failure[0]!r}")
                raise SystemExit(1)

    def _set_recovery() -> None:
        scm = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_ALL_ACCESS)
        try:
            handle = win32service.OpenService(scm, SERVICE_NAME, win32service.SERVICE_ALL_ACCESS)
            try:
                actions = [(win32service.SC_ACTION_RESTART, RESTART_DELAY_MS)] * 3
                win32service.ChangeServiceConfig2(
                    handle, win32service.SERVICE_CONFIG_FAILURE_ACTIONS,
                    {"ResetPeriod": RESET_PERIOD_S, "RebootMsg": "", "Command": "",
                     "Actions": actions})
            finally:
                win32service.CloseServiceHandle(handle)
        finally:
            win32service.CloseServiceHandle(scm)

    def _install(config_path: str | None, username: str | None, password: str | None) -> None:
        win32serviceutil.InstallService(
            SERVICE_CLASS, SERVICE_NAME, DISPLAY_NAME,
            startType=win32service.SERVICE_AUTO_START, userName=username, password=password,
            description=DESCRIPTION)
        win32serviceutil.SetServiceCustomOption(SERVICE_NAME, "config",
                                                config_path or str(default_paths().config))
        _set_recovery()

    def _control(action: str) -> None:
        {"remove": win32serviceutil.RemoveService, "start": win32serviceutil.StartService,
         "stop": win32serviceutil.StopService}[action](SERVICE_NAME)

else:

    def _install(config_path: str | None, username: str | None, password: str | None) -> None:
        _require_windows()

    def _control(action: str) -> None:
        _require_windows()


def install(config_path: str | None = None, *, username: str | None = None,
            password: str | None = None) -> None:
    """Register the service (automatic start, restart on failure). ``username`` is the account
    that reaches SMB shares, e.g. ``DOMAIN\\svc-hvcloud`` (a domain account, not LocalSystem)."""
    _require_windows()
    _install(config_path, username, password)


def remove() -> None:
    _require_windows()
    _control("remove")


def start() -> None:
    _require_windows()
    _control("start")


def stop() -> None:
    _require_windows()
    _control("stop")


def main(argv: list[str] | None = None) -> int:
    """``python -m hvcloud.agent.windows_service install|remove|start|stop [config]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    actions = {"remove": remove, "start": start, "stop": stop}
    if not args or args[0] not in {"install", *actions}:
        print(main.__doc__)
        return 2
    try:
        if args[0] == "install":
            install(args[1] if len(args) > 1 else None)
        else:
            actions[args[0]]()
    except NotSupported as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
