"""The timer both benchmarks use."""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved_best_times(fns: dict[str, Callable[[], object]], repeats: int, number: int) -> dict[str, float]:
    """Seconds per call for each function, best of ``repeats`` rounds.

    Each round times every function once, in turn, so that all of them see the same machine
    conditions (a noisy neighbour slows every engine in that round, not just one).
    """
    for fn in fns.values():
        fn()  # warm up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best
