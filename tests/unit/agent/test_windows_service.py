from __future__ import annotations

import sys

import pytest

from hvcloud.agent import windows_service
from hvcloud.hypervisor.driver import NotSupported


def test_windows_paths_live_under_program_data() -> None:
    paths = windows_service.default_paths("D:\\PD")
    assert str(paths.config) == "D:\\PD\\hvcloud\\agent.json"
    assert str(paths.data) == "D:\\PD\\hvcloud\\data"


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows behaviour")
def test_service_actions_refuse_cleanly_off_windows(capsys: pytest.CaptureFixture[str]) -> None:
    for action in (windows_service.remove, windows_service.start, windows_service.stop,
                   windows_service.install):
        with pytest.raises(NotSupported, match="needs Windows"):
            action()
    assert windows_service.main(["install"]) == 1
    assert "needs Windows" in capsys.readouterr().err
    assert windows_service.main(["bogus"]) == 2


@pytest.mark.skipif(sys.platform != "win32", reason="the service class exists only on Windows "
                                                    "(pywin32); not testable on this machine")
def test_service_class_is_registered_under_its_name() -> None:
    assert windows_service.AgentService._svc_name_ == "hvcloud-agent"  # type: ignore[attr-defined]


def test_config_file_maps_onto_agent_config(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from hvcloud.agent.config import ConfigError

    good = Path(str(tmp_path)) / "agent.json"
    good.write_text('{"listen_port": 8250, "data_dir": "/tmp/x", "allow_from": ["10.0.0.0/8"]}')
    config = windows_service.load_config(str(good))
    assert (config.driver, config.listen_port, config.data_dir) == ("hyperv", 8250, Path("/tmp/x"))
    good.write_text('{"store_roots": ["/srv/images"], "pool_roots": ["/srv/pools"], '
                    '"trusted_proxies": ["10.1.0.0/16"]}')
    config = windows_service.load_config(str(good))
    assert (config.store_roots, config.pool_roots) == ([Path("/srv/images")], [Path("/srv/pools")])
    assert [str(n) for n in config.trusted_proxies] == ["10.1.0.0/16"]
    bad = Path(str(tmp_path)) / "bad.json"
    for text in ('{"listen_prot": 1}', "[1, 2]"):
        bad.write_text(text)
        with pytest.raises(ConfigError):
            windows_service.load_config(str(bad))
