"""Host CPU and memory figures from /proc, for GetHostStats and Startup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuSample:
    busy: int
    total: int


def parse_proc_stat(text: str) -> CpuSample:
    for line in text.splitlines():
        if line.startswith("cpu "):
            vals = [int(v) for v in line.split()[1:]]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            total = sum(vals[:8])
            return CpuSample(busy=total - idle, total=total)
    raise ValueError("no aggregate cpu line in /proc/stat")


def cpu_percent(before: CpuSample, after: CpuSample) -> float:
    total = after.total - before.total
    if total <= 0:
        return 0.0
    return round(100.0 * (after.busy - before.busy) / total, 2)


def parse_meminfo(text: str) -> dict[str, int]:
    """Values in KiB, keyed by the /proc/meminfo field name."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


def read_cpu(path: Path = Path("/proc/stat")) -> CpuSample:
    return parse_proc_stat(path.read_text())


def read_meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    return parse_meminfo(path.read_text())
