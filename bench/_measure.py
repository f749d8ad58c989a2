"""One measuring protocol for both sides of the benchmark (our venv and the reference venv).

Only the standard library and torch, so that ``bench/reference.py`` can import it under the reference's
old diffusers and transformers.

Untraced and traced calls alternate (u t, t u, u t, ...), so that a slow drift of a shared machine falls on
both equally; times are medians. Each call is timed twice: wall-clock, and the CPU time of the calling thread
(``time.thread_time``). With one torch thread every CPU kernel runs on the calling thread, so the CPU time
is the work the call did, and other processes competing for the cores lengthen the wall-clock time but
barely touch it (though a busy sibling hyperthread still slows it); on CUDA only the wall-clock time means
anything. Contention only ever adds time, so the ratio of the fastest calls of each kind is reported too.

Memory during a call is measured as its peak over its start: on CUDA from the allocator
(``torch.cuda.max_memory_allocated``), on the CPU from the process's resident set size sampled every 2 ms
by a thread (tracemalloc does not see torch's allocations). A traced call's extra memory is the median
peak of the traced calls minus the median peak of the untraced ones.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """The resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` then ``m.peak``: bytes above the level at entry."""

    def __init__(self, device: torch.device | str, interval: float = 0.002) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.interval = interval
        self.peak = 0
        self._base = self._max = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._max = max(self._max, rss_bytes())

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = self._max = rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self.peak = max(self._max, rss_bytes()) - self._base


def timed_call(fn: Callable[[], Any], device: torch.device | str) -> tuple[float, float, int, Any]:
    """Wall-clock seconds, CPU seconds of this thread, peak extra bytes and result of one call of ``fn``."""
    cuda = torch.device(device).type == "cuda"
    with PeakMemory(device) as memory:
        if cuda:
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = fn()
        if cuda:
            torch.cuda.synchronize()
        seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - start_cpu
    return seconds, cpu_seconds, memory.peak, result


def interleaved(
    untraced: Callable[[], Any],
    traced: Callable[[], Any],
    reps: int,
    device: torch.device | str,
    warmup: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Time ``reps`` untraced and ``reps`` traced calls, alternating; medians, ratio and memory.

    ``warmup`` (called once first, not timed) should run both paths once, cheaply. The last traced call's
    result is returned as ``"traced_result"``.
    """
    if warmup is not None:
        warmup()
    times: dict[str, list[float]] = {"untraced": [], "traced": []}
    cpu_times: dict[str, list[float]] = {"untraced": [], "traced": []}
    peaks: dict[str, list[int]] = {"untraced": [], "traced": []}
    last = None
    for rep in range(reps):
        order = ("untraced", "traced") if rep % 2 == 0 else ("traced", "untraced")
        for kind in order:
            call = untraced if kind == "untraced" else traced
            seconds, cpu_seconds, peak, result = timed_call(call, device)
            times[kind].append(seconds)
            cpu_times[kind].append(cpu_seconds)
            peaks[kind].append(peak)
            if kind == "traced":
                last = result
    median = {k: statistics.median(v) for k, v in times.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpu_times.items()}
    median_peak = {k: statistics.median(v) for k, v in peaks.items()}
    return {
        "reps": reps,
        "untraced_s": median["untraced"],
        "traced_s": median["traced"],
        "ratio": median["traced"] / median["untraced"],
        "times_s": times,
        "untraced_cpu_s": median_cpu["untraced"],
        "traced_cpu_s": median_cpu["traced"],
        "cpu_ratio": median_cpu["traced"] / median_cpu["untraced"],
        "cpu_fastest_ratio": min(cpu_times["traced"]) / min(cpu_times["untraced"]),
        "fastest_ratio": min(times["traced"]) / min(times["untraced"]),
        "spread": {k: (max(v) - min(v)) / median[k] for k, v in times.items()},
        "cpu_times_s": cpu_times,
        "peak_untraced_bytes": median_peak["untraced"],
        "peak_traced_bytes": median_peak["traced"],
        "extra_peak_bytes": median_peak["traced"] - median_peak["untraced"],
        "traced_result": last,
    }
