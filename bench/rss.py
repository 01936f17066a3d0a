"""Resident memory of this process, sampled by a thread: the memory benchmarks' one probe.

Anonymous memory is what the process allocated itself; file-backed memory (libraries,
memory-mapped shards) is reclaimable, so the two are reported apart.
"""

from __future__ import annotations

import time

FIELDS = ("RssAnon", "RssFile")


def rss_kib() -> dict[str, int]:
    """This process's resident memory by kind, in KiB."""
    with open("/proc/self/status") as fh:
        pairs = (line.split(":", 1) for line in fh)
        return {key: int(value.split()[0]) for key, value in pairs if key in FIELDS}


def watch_peaks(peaks: dict[str, int], every_s: float = 0.05) -> None:
    """Raise ``peaks`` to the largest values seen, forever (a daemon thread)."""
    while True:
        for key, value in rss_kib().items():
            peaks[key] = max(peaks[key], value)
        time.sleep(every_s)
