import pytest

from hvcloud.hypervisor.libvirt.host_proc import CpuSample, cpu_percent, parse_meminfo, parse_proc_stat

STAT = """cpu  100 0 100 700 100 0 0 0 0 0
cpu0 50 0 50 350 50 0 0 0 0 0
intr 1 2 3
"""


def test_proc_stat_busy_and_total() -> None:
    s = parse_proc_stat(STAT)
    assert s == CpuSample(busy=200, total=1000)
    assert cpu_percent(s, CpuSample(busy=300, total=1200)) == 50.0
    assert cpu_percent(s, s) == 0.0


def test_proc_stat_without_cpu_line_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1 2\n")


def test_meminfo_in_kib_ignores_junk() -> None:
    info = parse_meminfo("MemTotal:       24000000 kB\nMemAvailable:   100 kB\nHugePages_Total: 0\nbad line\n")
    assert info == {"MemTotal": 24000000, "MemAvailable": 100, "HugePages_Total": 0}
