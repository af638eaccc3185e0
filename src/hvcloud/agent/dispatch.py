"""The dispatch table: command class name → handler, and the one place handlers are run.

Handlers are plain blocking functions ``(HostContext, command) -> Answer`` registered with
:func:`handles`. ``dispatch`` runs the host's command hooks (none in production; the simulator's
wiring installs fault injection as one), takes the per-VM lock when the command names a VM, runs
blocking handlers in the agent's worker pool, and turns every failure into an in-band
``result:false`` answer of the command's own answer class, as CloudStack's agent does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hvcloud import logs
from hvcloud.agent.context import HostContext
from hvcloud.host_errors import HostError
from hvcloud.wire.base import Answer, Command

log = logs.get("hvcloud.agent.dispatch")

HandlerFn = Callable[[HostContext, Any], Answer]
F = TypeVar("F", bound=HandlerFn)


@dataclass(frozen=True)
class Handler:
    command: type[Command]
    answer: type[Answer]
    fn: HandlerFn
    blocking: bool
    vm_name: Callable[[Any], str | None] | None

    @property
    def short(self) -> str:
        return self.command.FQCN.rsplit(".", 1)[-1]


HANDLERS: dict[str, Handler] = {}


@dataclass(frozen=True)
class HookVerdict:
    """What a :class:`CommandHook` decided for one command."""

    #: the answer to send in the command's place (the command does not run)
    answer: Answer | None = None
    #: called with the command's answer before it is sent
    then: Callable[[Answer], None] | None = None


class CommandHook(Protocol):
    """Runs before every command dispatched to a host; may delay it, answer in its place, or ask
    to see its answer. Installed per host by a driver's wiring (``HostContext.hooks``)."""

    async def before(self, ctx: HostContext, handler: Handler) -> HookVerdict | None: ...


def handles(command: type[Command], answer: type[Answer], *, blocking: bool = True,
            vm: Callable[[Any], str | None] | None = None) -> Callable[[F], F]:
    """Register ``fn`` as the handler of ``command``. ``vm`` extracts the VM name to lock on."""

    def register(fn: F) -> F:
        if command.FQCN in HANDLERS:
            raise TypeError(f"two handlers for {command.FQCN}")
        HANDLERS[command.FQCN] = Handler(command, answer, fn, blocking, vm)
        return fn

    return register


class Dispatcher:
    def __init__(self, workers: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hvcloud-handler")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def dispatch(self, ctx: HostContext, handler: Handler, cmd: Command) -> Answer:
        started = time.perf_counter()
        vm = handler.vm_name(cmd) if handler.vm_name is not None else None
        afterwards: list[Callable[[Answer], None]] = []
        try:
            for hook in ctx.hooks:
                verdict = await hook.before(ctx, handler)
                if verdict is None:
                    continue
                if verdict.answer is not None:
                    return verdict.answer
                if verdict.then is not None:
                    afterwards.append(verdict.then)
            if vm is not None:
                async with ctx.locks.hold(vm):
                    answer = await self._call(ctx, handler, cmd)
            else:
                answer = await self._call(ctx, handler, cmd)
        except HostError as exc:
            answer = handler.answer(result=False, details=f"{handler.short} failed: {exc}")
        except Exception as exc:
            log.exception("handler crashed", command=handler.short, host=ctx.address, vm=vm)
            answer = handler.answer(result=False,
                                    details=f"{handler.short} failed: internal error ({type(exc).__name__})")
        for then in afterwards:
            then(answer)
        elapsed = (time.perf_counter() - started) * 1000
        if handler.blocking:
            log.info("command", command=handler.short, host=ctx.address, vm=vm, result=answer.result,
                     ms=round(elapsed, 2), details=None if answer.result else answer.details)
        return answer

    async def _call(self, ctx: HostContext, handler: Handler, cmd: Command) -> Answer:
        if handler.blocking:
            result: Answer = await self.run_blocking(handler.fn, ctx, cmd)
            return result
        return handler.fn(ctx, cmd)
