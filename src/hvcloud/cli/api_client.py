"""A small signed CloudStack API client for the CLI (the demo); the tests use the real ``cs`` library."""

from __future__ import annotations

import time
from typing import Any

import httpx

from hvcloud.server.api.signature import compute_signature


class ApiError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


class ApiClient:
    def __init__(self, endpoint: str, apikey: str, secret: str, timeout: float = 60.0) -> None:
        self.endpoint = endpoint
        self.apikey = apikey
        self.secret = secret
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        values = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items() if v is not None}
        values.update(command=command, response="json", apiKey=self.apikey)
        values["signature"] = compute_signature(list(values.items()), self.secret)
        r = self._http.post(self.endpoint, data=values)
        body = r.json()
        inner = next(iter(body.values())) if isinstance(body, dict) and body else {}
        if r.status_code != 200:
            raise ApiError(int(inner.get("errorcode", r.status_code)), str(inner.get("errortext", r.text)))
        return dict(inner)

    def wait(self, jobid: str, timeout: float = 600.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.call("queryAsyncJobResult", jobid=jobid)
            if job["jobstatus"] == 1:
                return dict(job.get("jobresult") or {})
            if job["jobstatus"] == 2:
                result = job.get("jobresult") or {}
                raise ApiError(int(result.get("errorcode", 530)), str(result.get("errortext", "job failed")))
            if time.monotonic() > deadline:
                raise ApiError(530, f"job {jobid} did not finish within {timeout:g} s")
            time.sleep(0.25)

    def run(self, command: str, **params: Any) -> dict[str, Any]:
        """Call a command; for an async one wait for its job and return the job result."""
        out = self.call(command, **params)
        if "jobid" in out and len(out) <= 2:
            return self.wait(str(out["jobid"]))
        return out
