"""Commands on one VM never interleave; commands on different VMs run side by side."""

from __future__ import annotations

import asyncio

from hvcloud.agent.context import VmLocks


def test_same_vm_is_serialised_and_other_vms_are_not() -> None:
    async def scenario() -> tuple[list[str], int]:
        locks = VmLocks()
        events: list[str] = []
        active = {"i-1": 0}
        peak = 0

        async def work(vm: str, tag: str) -> None:
            nonlocal peak
            async with locks.hold(vm):
                events.append(f"{tag}+")
                if vm == "i-1":
                    active["i-1"] += 1
                    peak = max(peak, active["i-1"])
                await asyncio.sleep(0.01)
                if vm == "i-1":
                    active["i-1"] -= 1
                events.append(f"{tag}-")

        await asyncio.gather(work("i-1", "a"), work("i-1", "b"), work("i-2", "c"), work("i-1", "d"))
        assert len(locks) == 0
        return events, peak

    events, peak = asyncio.run(scenario())
    assert peak == 1
    for tag in "abd":
        start = events.index(f"{tag}+")
        assert events[start + 1] in (f"{tag}-", "c+", "c-")
    assert events.index("c+") < events.index("d-")
