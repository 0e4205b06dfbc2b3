"""How many torch threads a live session runs fastest on, measured at its start.

A live step is many small operations. On idle cores two threads run it faster than one (the
bundled model on 2 cores: p95 80 ms per step against 119 ms); on cores other work keeps busy,
two threads wait on each other and run it several times slower (10.8 fps against 23.0 with two
busy processes beside it; docs/LIVE.md). Neither choice is right everywhere, so `fastest_threads`
times the session's own warm-up step with each candidate count and keeps the fastest.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence

from floatalk.live.session import LiveSession

__all__ = ["fastest_threads", "thread_candidates"]


def thread_candidates() -> tuple[int, ...]:
    """1 and the machine's cores (only 1 on a single core)."""
    cores = os.cpu_count() or 1
    return (1,) if cores == 1 else (1, cores)


def fastest_threads(session: LiveSession, candidates: Sequence[int] | None = None, repeats: int = 3) -> int:
    """Time `session`'s warm-up step (an FMT window and a chunk's frames decoded) `repeats` times
    with each torch thread count in `candidates` (default `thread_candidates()`), keep the one
    with the lowest median, and leave torch set to it; returns it. Ties go to fewer threads."""
    import torch

    counts = sorted(set(candidates if candidates is not None else thread_candidates()))
    if not counts or counts[0] < 1:
        raise ValueError("thread counts must be at least 1")
    medians = {}
    for n in counts:
        torch.set_num_threads(n)
        session.warm_up()  # the first call at a new count pays for its threads' start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.warm_up()
            times.append(time.perf_counter() - start)
        medians[n] = statistics.median(times)
    best = min(counts, key=lambda n: (medians[n], n))
    torch.set_num_threads(best)
    return best
