"""The bench's memory sampler: the peak PSS of a process tree, read only when it can rise."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_ingest


def test_pss_is_read_only_when_the_rss_could_raise_the_peak(monkeypatch):
    me = psutil.Process()
    reads: list[int] = []
    real = bench_ingest._resident

    def counted(p: psutil.Process) -> int:
        reads.append(p.pid)
        return real(p)

    monkeypatch.setattr(bench_ingest, "_resident", counted)
    first = bench_ingest.tree_peak([me], 0)
    assert reads == [me.pid]
    assert 0 < first <= me.memory_info().rss  # PSS, at most the RSS
    # the RSS is below the peak plus the slack: PSS cannot be higher, nothing is read
    assert bench_ingest.tree_peak([me], first) == first
    assert reads == [me.pid]
    # a peak far below the RSS (here over 32 MiB): the PSS is read and becomes the peak
    assert me.memory_info().rss > 1 + bench_ingest.PSS_SLACK
    assert bench_ingest.tree_peak([me], 1) > 1
    assert reads == [me.pid, me.pid]


def test_a_gone_process_counts_nothing():
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert bench_ingest.tree_peak([gone], 0) == 0
