"""Running a console proxy: the web server, the ``console_proxy`` row and its heartbeat, and a
graceful stop (SIGTERM/SIGINT close every console with "proxy shutting down" and remove the row)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from hvcloud import logs
from hvcloud.console_proxy.app import ProxyState, build_app, novnc_present, state_of
from hvcloud.console_proxy.config import ProxyConfig
from hvcloud.console_proxy.sessions import SessionStore

log = logs.get(__name__)


class ProxyService:
    """One proxy in the running event loop: ``await start()``, then ``await stop()``."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.store = SessionStore(config.db_url, config.proxy_name, "")
        self.app = build_app(config, self.store)
        self._runner: web.AppRunner | None = None
        self._beat: asyncio.Task[None] | None = None
        self.port = config.listen_port
        self.beats = 0

    @property
    def state(self) -> ProxyState:
        return state_of(self.app)

    @property
    def url(self) -> str:
        return dataclasses.replace(self.config, listen_port=self.port).base_url

    async def start(self) -> None:
        if not novnc_present(self.config.novnc_dir):
            log.warning("console_proxy.no_novnc", novnc_dir=str(self.config.novnc_dir))
        ssl_context = self.config.ssl_context()
        family = socket.AF_INET6 if ":" in self.config.listen_host else socket.AF_INET
        sock = socket.create_server((self.config.listen_host, self.config.listen_port), family=family)
        self.port = int(sock.getsockname()[1])
        self.store.url = self.url
        try:
            await self.store.register()  # before serving: a proxy that answers is in the table
        except SQLAlchemyError:
            sock.close()
            raise
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=5.0,
                                     logger=_http_logger())
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=ssl_context).start()
        self._beat = asyncio.create_task(self._heartbeat())
        log.info("console_proxy.started", url=self.store.url, proxy=self.store.proxy_id,
                 tls=ssl_context is not None)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            await self.store.beat(self.state.active)
            self.beats += 1

    async def stop(self) -> None:
        await self.state.shutdown()
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
        if self._runner is not None:
            await self._runner.cleanup()
        await self.store.unregister()
        self.store.dispose()
        log.info("console_proxy.stopped", proxy=self.store.proxy_id)


class _NoTraceback(logging.Filter):
    """aiohttp logs a malformed request (a TLS hello on a plain port, a bad request line) with its
    traceback; one line is enough, and a traceback's frames could hold request data."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(error).__name__}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _http_logger() -> logging.Logger:
    logger = logging.getLogger("hvcloud.console_proxy.http")
    if not any(isinstance(f, _NoTraceback) for f in logger.filters):
        logger.addFilter(_NoTraceback())
    return logger


async def serve(config: ProxyConfig, ready: asyncio.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = ProxyService(config)
    await service.start()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await service.stop()

