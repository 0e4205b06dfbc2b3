"""FloatEngine's steps on a tiny model: several portraits decoded together as each alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from floatalk.engine import FloatEngine


@pytest.mark.parametrize("mode", ["batched", "exact"])
def test_decode_faces_renders_each_face_as_alone(tiny_model, mode):
    engine = FloatEngine(tiny_model, decode=mode)
    rng = np.random.default_rng(0)
    sources = [engine.encode_image((rng.random((32, 32, 3)) * 255).astype(np.uint8), crop=False) for _ in range(3)]
    motion = torch.randn(3, 5, engine.cfg.motion_ae.style_dim, generator=torch.Generator().manual_seed(1)) * 0.3
    batches = list(engine.decode_faces(sources, motion, batch_size=6))
    assert [b.shape for b in batches] == [(2, 3, 32, 32, 3)] * 2 + [(1, 3, 32, 32, 3)]  # 6 // 3 frames a pass
    together = np.concatenate(batches)  # (T, F, S, S, 3)
    for f, source in enumerate(sources):
        alone = np.concatenate(list(engine.decode(source, motion[f : f + 1], batch_size=4)))
        assert np.abs(together[:, f].astype(int) - alone.astype(int)).max() <= 1
