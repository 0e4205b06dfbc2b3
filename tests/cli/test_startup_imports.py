"""What a bundled-model run imports: only what it uses (issue 28).

transformers (seconds of start-up) is needed only to build the release's wav2vec2 encoders, the
face-mesh runtime only to find a face, torchdiffeq (and with it scipy.integrate) only for the
midpoint and RK4 solvers. A real `floatalk generate` with the bundled model runs in a fresh
process, which then reports what it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from floatalk.cli.main import main
code = main(sys.argv[1:])
names = ("transformers", "ai_edge_litert", "torchdiffeq", "scipy.integrate")
print(json.dumps({"code": code, **{name: name in sys.modules for name in names}}))
"""


@pytest.mark.slow
def test_the_bundled_path_imports_neither_transformers_nor_the_mesh_runtime(tmp_path):
    from floatalk.apps.examples import write_example

    example = write_example(tmp_path, seconds=1.0, frames=False)
    argv = ["generate", "--image", str(example.image), "--audio", str(example.audio)]
    argv += ["--out", str(tmp_path / "v.mp4"), "--no-crop", "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {
        "code": 0,
        "transformers": False,
        "ai_edge_litert": False,
        "torchdiffeq": False,
        "scipy.integrate": False,
    }
