"""Live-session fixtures: one thread (a live step is many small operations; on a busy 2-core
machine two threads stall each other) and the bundled model's example as a waveform."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def example_wave(bundled_pipe, example) -> np.ndarray:
    """The example's speech: (N,) float32 16 kHz, 2 s."""
    return bundled_pipe.load_audio(example.audio)
