"""Peak RSS of release-size decoding with glibc's allocator tuned before loading, after loading, or not at all.

`floatalk.engine.reuse_freed_memory` keeps freed blocks in the heap (no mmap, no trimming), which
saves the decoder page faults. Tuned before the weights are loaded, the checkpoint's temporary copy
stays in the heap too. Each mode runs in a fresh process: load the model, prepare the parity photo
and 4 s of speech, sample the first window, decode its first `--frames` frames in batches of 8;
VmHWM (peak RSS) and VmRSS after loading and after decoding.

    python experiments/allocator_peak_rss.py [--checkpoint checkpoints/parity_release] [--frames 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "data" / "parity" / "inputs_a"

WORKER = """
import json, sys
from pathlib import Path
import numpy as np, torch
from floatalk.io.audio import load_audio
from floatalk.pipeline import FloatPipeline, reuse_freed_memory

def memory():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) // 1024 for key in ("VmHWM", "VmRSS")}

mode, checkpoint, parity, frames = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(2)
if mode == "before":
    reuse_freed_memory()
pipe = FloatPipeline.from_pretrained(checkpoint)
if mode == "after":
    reuse_freed_memory()
loaded = memory()
wave = np.resize(load_audio(parity / "audio.wav", sample_rate=16000), 64000).astype(np.float32)
options = pipe.options(crop=False)
with torch.inference_mode():
    conditions = pipe.prepare(parity / "image.png", wave, options)
    _, motion = next(pipe.sample_motion(conditions, options))
    for _ in pipe.decode(conditions.source, motion[:, :frames], 8):
        pass
print(json.dumps({"mode": mode, "loaded": loaded, "decoded": memory()}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "parity_release")
    p.add_argument("--frames", type=int, default=32, help="frames decoded (default 32)")
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.frames} frames decoded in batches of 8")
    print("| allocator tuned | RSS after loading MiB | peak RSS MiB | RSS after decoding MiB |")
    print("|---|---|---|---|")
    for mode in ("before", "after", "none"):
        cmd = [sys.executable, "-c", WORKER, mode, str(args.checkpoint), str(PARITY), str(args.frames)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        label = {"before": "before loading", "after": "after loading", "none": "not at all"}[mode]
        print(f"| {label} | {r['loaded']['VmRSS']} | {r['decoded']['VmHWM']} | {r['decoded']['VmRSS']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
