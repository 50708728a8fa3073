"""The timer both benchmarks use, and one thread for every framework.

Importing this module before NumPy, PyTorch or JAX load limits each to one BLAS/OpenMP/XLA thread
(unless the caller set the variables): on this project's 2-core machine thread pools oversubscribe,
and every engine is compared on the same footing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


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
