"""`fastest_threads`: the torch thread count a live session's step runs fastest on, kept."""

from __future__ import annotations

import time

import pytest
import torch

from floatalk.live.threads import fastest_threads, thread_candidates


@pytest.fixture(autouse=True)
def _keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class _Step:
    """A session stand-in whose warm-up step is slow on the thread counts in `slow`."""

    def __init__(self, slow: set[int]) -> None:
        self.slow = slow
        self.calls: list[int] = []

    def warm_up(self) -> None:
        n = torch.get_num_threads()
        self.calls.append(n)
        time.sleep(0.02 if n in self.slow else 0.001)


@pytest.mark.parametrize(("slow", "expected"), [({2}, 1), ({1}, 2)])
def test_the_faster_count_is_kept(slow, expected):
    step = _Step(slow)
    assert fastest_threads(step, (1, 2), repeats=3) == expected  # type: ignore[arg-type]
    assert torch.get_num_threads() == expected
    assert step.calls == [1] * 4 + [2] * 4  # one untimed call per count, then the timed ones


def test_candidates_and_bad_counts():
    assert thread_candidates()[0] == 1 and len(set(thread_candidates())) == len(thread_candidates())
    with pytest.raises(ValueError):
        fastest_threads(_Step(set()), (0, 1))  # type: ignore[arg-type]


def test_a_real_session_gets_a_count_it_can_run(bundled_pipe, example):
    session = bundled_pipe.live(example.image, chunk_ms=120, lookahead_ms=80)
    chosen = fastest_threads(session, repeats=1)
    assert chosen in thread_candidates() and torch.get_num_threads() == chosen
    assert session.committed == 0  # timing the warm-up step changed nothing of the session
