"""Golden training logs: both stages, run on four clips of the synthetic world at 64 px, must
write the very log.csv rows (every value as written; only the wall-clock `time` is left out),
probe.csv rows and final weights recorded in tests/golden/training_*.json, straight and resumed.

Stage 1 runs with every optional loss on (speech anchor, expression anchor, landmark flow, first
sources, near pairs, EMA, the adversarial term from step 1 and R1 at step 16) at a narrow width
(--channel-base 256) to stay cheap; stage 2 trains on stage 1's export. R1 shows in the weights
only: log.csv keeps the columns of its first row. To re-record after an intended change of the
numbers, or to add a kind of machine (its CPU's kernels round differently), with the code as it was:
FLOATALK_RECORD_GOLDEN=1 FLOATALK_GOLDEN_MACHINE='CPU model, features' pytest tests/training/test_golden_training.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shlex
from pathlib import Path

import pytest
import torch

from floatalk.cli.main import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
RECORD = os.environ.get("FLOATALK_RECORD_GOLDEN") == "1"

# Stage 1 with every optional loss on; --channel-base 256 keeps it cheap.
STAGE1 = shlex.split(
    "train motion-ae --config tiny --channel-base 256 --batch-size 2 --grad-accum 2 --log-every 1 --ckpt-every 8 "
    "--sample-every 100 --mouth-weight 10 --eye-weight 2 --near-pairs 0.5 --near-gap 3 --first-source 0.3 "
    "--speech-anchor 1 --expression-anchor 1 --landmark-flow 5 --ema-decay 0.9 --adam-beta1 0.5 --quiet"
)
STAGE1_STEPS = 16  # R1 runs every 16th step

STAGE2 = shlex.split(
    "train fmt --config tiny --batch-size 4 --grad-accum 2 --lr 1e-3 --warmup 2 --log-every 1 --ckpt-every 3 "
    "--sample-every 100 --first-reference 0.5 --drop-audio 0.2 --ema-decay 0.9 --quiet"
)
STAGE2_STEPS = 6


def rows(path: Path, leave_out: tuple[str, ...] = ("time",)) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in leave_out} for r in csv.DictReader(f)]


def digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names and exact tensor bytes."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def checkpoint_digests(run: Path, keys: tuple[str, ...]) -> dict[str, str]:
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    return {key: digest(state[key]) for key in keys}


def compare_or_record(name: str, got: dict[str, object]) -> None:
    """Compare with the records of training_NAME.json: every value must equal those of one record
    (float rounding differs between CPU kernels, so there is one record per kind of machine, each
    made by the same code). With FLOATALK_RECORD_GOLDEN=1, add this run as the record of the
    machine FLOATALK_GOLDEN_MACHINE names instead."""
    path = GOLDEN / f"training_{name}.json"
    records = json.loads(path.read_text())["records"] if path.exists() else []
    if RECORD:
        machine = os.environ.get("FLOATALK_GOLDEN_MACHINE") or "unnamed machine"
        records.append({**got, "machine": machine})
        path.write_text(json.dumps({"records": records}, indent=1, sort_keys=True) + "\n")
        return
    assert records, f"{path.name} holds no record"
    for record in records:
        assert got.keys() == record.keys() - {"machine"}
    matching = [r["machine"] for r in records if all(got[k] == r[k] for k in got)]
    closest = max(records, key=lambda r: sum(got[k] == r[k] for k in got))
    changed = [k for k in got if got[k] != closest[k]]
    assert matching, f"{name}: no record of {path.name} reproduced; against {closest['machine']}: {changed} differ"


def train(args: list[str], data: Path, out: Path, steps: int, *extra: str) -> Path:
    assert main([*args, "--data", str(data), "--out", str(out), "--max-steps", str(steps), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Four 3 s clips of the synthetic world (seed 3, as tests/training/test_training.py's), preprocessed at 64 px.

    They are written losslessly (crf 0): x264's lossy encoding of the same frames was seen to vary
    between runs of `floatalk synth-data`, while decoded lossless frames cannot."""
    from floatalk.synth.world import clip_specs, make_clip, write_clip

    videos = tmp_path_factory.mktemp("golden_data") / "videos"
    videos.mkdir()
    for spec in clip_specs(4, 3.0, 96, 3):
        write_clip(make_clip(spec), videos, crf=0)
    prep = ["preprocess", "--videos", str(videos), "--out", str(videos.parent / "data"), "--size", "64"]
    assert main([*prep, "--val-fraction", "0.25", "--quiet"]) == 0
    return videos.parent / "data"


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory) -> Path:
    return train(STAGE1, data, tmp_path_factory.mktemp("golden") / "mae", STAGE1_STEPS)


def stage1_values(run: Path) -> dict[str, object]:
    return {"log": rows(run / "log.csv"), "weights": checkpoint_digests(run, ("model", "disc"))}


def stage2_values(run: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    weights = checkpoint_digests(run, ("model",))
    weights["export"] = digest(load_file(run / "model" / "model.safetensors"))
    return {"log": rows(run / "log.csv"), "weights": weights}


def test_motion_ae_golden_log(stage1):
    compare_or_record("motion_ae", {**stage1_values(stage1), "probe": rows(stage1 / "probe.csv", ())})


@pytest.mark.slow  # a second training run from a checkpoint
def test_motion_ae_golden_log_resumed(stage1, data, tmp_path):
    run = train(STAGE1, data, tmp_path / "mae", STAGE1_STEPS // 2)
    train(STAGE1, data, run, STAGE1_STEPS, "--resume")
    assert stage1_values(run) == stage1_values(stage1)


@pytest.fixture(scope="module")
def stage2(stage1, data, tmp_path_factory) -> Path:
    return train([*STAGE2, "--motion-ae", str(stage1)], data, tmp_path_factory.mktemp("golden") / "fmt", STAGE2_STEPS)


def test_fmt_golden_log(stage2):
    compare_or_record("fmt", stage2_values(stage2))


@pytest.mark.slow  # a second training run from a checkpoint
def test_fmt_golden_log_resumed(stage1, stage2, data, tmp_path):
    args = [*STAGE2, "--motion-ae", str(stage1)]
    run = train(args, data, tmp_path / "fmt", STAGE2_STEPS // 2)
    train(args, data, run, STAGE2_STEPS, "--resume")
    assert stage2_values(run) == stage2_values(stage2)
