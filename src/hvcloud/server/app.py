"""The ASGI application of the management server."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.routing import Route

from hvcloud import logs
from hvcloud.server import access_log
from hvcloud.server.api import commands
from hvcloud.server.api.console_servlet import make_console_handler
from hvcloud.server.api.endpoint import make_handler
from hvcloud.server.api.registry import REGISTRY
from hvcloud.server.api.uploads import make_upload_handler
from hvcloud.server.jobs.engine import EngineSettings, JobEngine
from hvcloud.server.orchestration import job_handlers, roles, storage_cleanup, usage
from hvcloud.server.orchestration.agent_manager import AgentManager
from hvcloud.server.orchestration.networks import network_gc
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.state import ServerState
from hvcloud.server.web.assets import AssetRoutes

log = logs.get(__name__)


def load_plugins(names: tuple[str, ...]) -> None:
    """Import extra modules that register API commands or job handlers (``--plugin``)."""
    for name in names:
        importlib.import_module(name)


async def watch_settings(state: ServerState) -> None:
    """Apply settings another server changed: every ``settings_poll_seconds`` one read of
    ``configuration_version`` (the rows only when it moved), never on the API's path."""
    while True:
        await asyncio.sleep(state.config.settings_poll_seconds)
        try:
            await asyncio.to_thread(state.refresh_settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reloading the settings failed")


def create_app(state: ServerState, *, run_jobs: bool = True) -> Starlette:
    commands.load()
    job_handlers.load()
    load_plugins(state.config.plugins)
    roles.write_default_rules(state.sessions, [c.name for c in REGISTRY.all() if not c.admin_only])
    access_log.install()
    handler = make_handler(state, REGISTRY)
    config = state.config

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # the API's requests run in anyio's worker threads (starlette's run_in_threadpool)
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.api_threads
        manager: AgentManager | None = None
        engine: JobEngine | None = None
        background: list[asyncio.Task[None]] = []
        if config.manage_agents:
            # without the job engine nothing heartbeats this server, so it holds no host leases
            manager = AgentManager(config, state.sessions, state.box,
                                   server_id=state.server_id if run_jobs else None)
            manager.on_power_change.append(vms.power_listener(
                state.sessions, lambda: state.config.power_report_grace_seconds))
            background.append(asyncio.create_task(vms.power_sweep_loop(state.sessions, lambda: (
                state.config.ping_interval_seconds, state.config.power_report_grace_seconds))))
            background.append(asyncio.create_task(storage_cleanup.cleanup_loop(
                state.sessions, manager, state.box, config.ping_interval_seconds)))
            background.append(asyncio.create_task(network_gc.gc_loop(
                state.sessions, manager, state.box, config.network_gc_interval_seconds,
                config.network_gc_wait_seconds)))
            await manager.start()
            state.agents = manager
            state.on_settings_change.append(manager.reconfigure)
        if run_jobs:
            engine = JobEngine(state, state.server_id, EngineSettings(
                workers=config.job_workers, poll_seconds=config.job_poll_seconds,
                lease_seconds=config.lease_seconds, max_attempts=config.max_job_attempts,
                expire_seconds=config.job_expire_minutes * 60), agents=manager)
            state.jobs = engine
            await engine.start()
        if run_jobs:
            background.append(asyncio.create_task(usage.usage_loop(state.sessions, lambda: (
                state.config.usage_poll_seconds, state.config.usage_aggregation_minutes)), name="usage"))
        background.append(asyncio.create_task(watch_settings(state), name="settings-watch"))
        try:
            yield
        finally:
            if manager is not None:
                state.on_settings_change.remove(manager.reconfigure)
            if engine is not None:
                await engine.stop()
                state.jobs = None
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if manager is not None:
                state.agents = None
                await manager.stop()

    upload = make_upload_handler(state)
    ui = AssetRoutes()
    return Starlette(routes=[Route("/client/api", handler, methods=["GET", "POST"]),
                             Route("/client/api/", handler, methods=["GET", "POST"]),
                             Route("/client/console", make_console_handler(state), methods=["GET"]),
                             Route("/upload/template/{ref_id}", upload, methods=["POST"]),
                             Route("/", ui.index, methods=["GET"]),
                             Route("/client", ui.index, methods=["GET"]),
                             Route("/client/", ui.index, methods=["GET"]),
                             Route("/ui/{path:path}", ui.file, methods=["GET"])],
                     lifespan=lifespan)
