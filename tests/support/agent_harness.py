"""An in-process agent (simulator driver) driven through its real HTTP application."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from hvcloud.agent.config import AgentConfig, parse_networks
from hvcloud.agent.credentials import Credentials
from hvcloud.agent.service import build_app, build_hosts
from hvcloud.wire import signing

USER, PASSWORD = "admin", "s3cret-pass"


class AgentHarness:
    def __init__(self, data_dir: Path, *, auth: str = "password", allow_from: list[str] | None = None,
                 client_ip: str = "127.0.0.1", max_body: int = 1024 * 1024, sim_hosts: int = 1) -> None:
        self.config = AgentConfig(driver="simulator", data_dir=data_dir, auth=auth,  # type: ignore[arg-type]
                                  allow_from=parse_networks(allow_from or []), max_body_bytes=max_body,
                                  listen_host="127.0.0.1", sim_hosts=sim_hosts)
        self.config.validate()
        self.hosts = build_hosts(self.config)
        creds = Credentials(USER, PASSWORD) if auth == "password" else None
        self.agent = build_app(self.config, self.hosts, creds)
        self.client = TestClient(self.agent.app, base_url="https://127.0.0.1:8250", client=(client_ip, 40000))
        self.sign = auth == "password"

    @property
    def host(self) -> Any:
        return self.hosts[0]

    def post(self, fqcn: str, body: bytes | dict[str, Any] | list[Any], *, sign: bool | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        path = f"/api/HypervResource/{fqcn}"
        h = {"content-type": "application/json"}
        if self.sign if sign is None else sign:
            h.update(signing.sign_headers(USER, PASSWORD, "POST", path, raw))
        h.update(headers or {})
        return self.client.post(path, content=raw, headers=h)

    def answer(self, fqcn: str, body: bytes | dict[str, Any] | list[Any]) -> tuple[str, dict[str, Any]]:
        """POST and unwrap ``[{"<FQCN>": {...}}]`` into (class name, fields)."""
        r = self.post(fqcn, body)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        data = r.json()
        assert isinstance(data, list) and len(data) == 1 and len(data[0]) == 1
        ((cls, fields),) = data[0].items()
        return cls, fields
