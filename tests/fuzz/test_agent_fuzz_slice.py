"""A deterministic slice of the agent fuzzer, in-process; the full run is ``bench/fuzz_agent.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud import logs
from hvcloud.wire import codec
from tests.fuzz import agent_fuzz
from tests.support.agent_harness import AgentHarness

MAX_BODY = 64 * 1024


@pytest.fixture
def configured_logs() -> Iterator[None]:
    """Log as the agent process does (the fuzzer must also survive the log pipeline)."""
    logs.configure("warning", json_output=False)
    yield


def run_slice(agent: AgentHarness, seed: int, count: int) -> agent_fuzz.Tally:
    for fqcn, body in agent_fuzz.warm_up_bodies():
        assert agent.post(fqcn, body).status_code == 200
    tally = agent_fuzz.Tally.empty()
    data_dir = agent.config.data_dir
    for case in agent_fuzz.cases(seed, count, MAX_BODY):
        before = agent_fuzz.snapshot(data_dir)
        r = agent.post(case.fqcn, case.body)
        agent_fuzz.judge(case, r.status_code, r.headers.get("content-type", ""), r.content, before,
                         agent_fuzz.snapshot(data_dir), tally)
    return tally


def test_fuzz_slice_every_answer_is_well_formed_and_rejections_write_nothing(
        tmp_path: Path, configured_logs: None) -> None:
    agent = AgentHarness(tmp_path / "agent", max_body=MAX_BODY)
    tally = run_slice(agent, seed=20261122, count=400)
    assert tally.failures == []
    assert tally.total == 400
    assert tally.counts.get("accepted", 0) > 0 and tally.counts.get("failed-in-band", 0) > 0
    assert any(k.startswith("refused-") for k in tally.counts)


def test_cases_are_reproducible_and_cover_every_handled_command() -> None:
    first = list(agent_fuzz.cases(7, 300, MAX_BODY))
    again = list(agent_fuzz.cases(7, 300, MAX_BODY))
    assert first == again
    bodies = agent_fuzz.base_bodies(__import__("random").Random(1))
    assert {c.fqcn for c in first} == set(bodies)
    handled = set(agent_fuzz.HANDLERS) & set(agent_fuzz.COMMANDS)
    assert len(handled) >= 30 and handled | {agent_fuzz.STARTUP, agent_fuzz.HOST_VM_STATE_REPORT} == set(bodies)
    assert {c.mutation for c in agent_fuzz.cases(7, 2000, MAX_BODY)} == set(agent_fuzz.MUTATIONS)


def test_the_checker_flags_what_it_should() -> None:
    ready = "com.cloud.agent.api.ReadyCommand"
    assert agent_fuzz.check(ready, 500, "text/plain", b"Internal Server Error")[1] is not None
    assert agent_fuzz.check(ready, 400, "text/plain", b"Traceback (most recent call last):")[1] is not None
    assert agent_fuzz.check(ready, 200, "application/json", b'[{"x.Y":{"result":true}}]')[1] is not None
    good = b'[{"com.cloud.agent.api.ReadyAnswer":{"result":false,"details":"no"}}]'
    assert agent_fuzz.check(ready, 200, "application/json", good) == ("failed-in-band", None)
    crash = b'[{"com.cloud.agent.api.ReadyAnswer":{"result":false,"details":"x failed: internal error (KeyError)"}}]'
    assert agent_fuzz.check(ready, 200, "application/json", crash)[0] == "handler-crash"


# --------------------------------------------------------------------------- regressions found by fuzzing


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff"])
def test_lone_surrogate_in_a_request_is_answered_not_crashed(tmp_path: Path, configured_logs: None,
                                                            escape: str) -> None:
    """``{"vmName":"\\ud800"}`` is valid JSON; echoing it in ``details`` used to raise UnicodeEncodeError
    (in the answer encoder and in the log line), a 500 with no answer."""
    agent = AgentHarness(tmp_path / "agent")
    r = agent.post("com.cloud.agent.api.RebootCommand", f'{{"vmName":"{escape}"}}'.encode())
    assert r.status_code == 200
    ((cls, fields),) = r.json()[0].items()
    assert cls == "com.cloud.agent.api.RebootAnswer" and fields["result"] is False
    assert json.loads(escape.join('""')) in fields["details"]


def test_codec_dumps_lone_surrogates_as_ascii_escapes() -> None:
    raw = codec.dumps({"name": "a\ud800b", "ok": "\u00e9"})
    assert raw == b'{"name":"a\\ud800b","ok":"\\u00e9"}'
    assert json.loads(raw) == {"name": "a\ud800b", "ok": "\u00e9"}
    assert codec.dumps({"ok": "\u00e9"}) == '{"ok":"\u00e9"}'.encode()


def test_log_values_from_requests_cannot_forge_lines() -> None:
    event = logs.neutralise(None, "info", {"event": "command", "vm": "x\nFAKE LINE\x1b[2J\u202e\ud800",
                                          "exception": "Traceback\n  line \ud800"})
    assert event["vm"] == "x\\u000aFAKE LINE\\u001b[2J\\u202e\\ud800"
    assert event["exception"] == "Traceback\n  line \\ud800"


def test_deeply_nested_extra_field_in_startup_is_refused_not_crashed(tmp_path: Path) -> None:
    """Nesting that ``json`` parses (< 1000 levels) but pydantic cannot serialise back used to give a
    500 from the startup exchange, whose answer echoes unknown fields."""
    agent = AgentHarness(tmp_path / "agent")
    body = json.loads((agent_fuzz.DATA / "StartupCommand.json").read_text())
    deep: object = 1
    for _ in range(400):
        deep = [deep]
    body[0]["com.cloud.agent.api.StartupRoutingCommand"]["futureField"] = deep
    before = agent_fuzz.snapshot(agent.config.data_dir)
    r = agent.post(agent_fuzz.STARTUP, json.dumps(body).encode())
    assert r.status_code == 400 and "nested deeper than" in r.text
    assert agent_fuzz.snapshot(agent.config.data_dir) == before


def test_codec_refuses_deep_documents_it_would_accept_from_json() -> None:
    assert codec.decode_json(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(codec.WireError, match="nested deeper"):
        codec.decode_json(b"[" * 65 + b"]" * 65)
    with pytest.raises(codec.WireError, match="nested deeper"):
        codec.decode_json(b'{"a":' * 300 + b"1" + b"}" * 300)
