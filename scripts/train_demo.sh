#!/usr/bin/env bash
# The recipe of the bundled demo model (src/floatalk/assets/demo_model; docs/MODEL_CARD.md).
# Offline, from scratch, seeds fixed:
# synthetic world (seed 1) -> preprocess -> stage 1 (motion AE) -> stage 2 (FMT) -> float16 bundle.
# Usage: scripts/train_demo.sh [WORK_DIR] [BUNDLE_DIR]
#   (defaults: runs/demo, and src/floatalk/assets/demo_model for the float16 bundle)
set -euo pipefail
WORK=${1:-runs/demo}
BUNDLE=${2:-src/floatalk/assets/demo_model}
mkdir -p "$WORK"
start=$(date +%s)
floatalk synth-data --out "$WORK/videos" --clips 160 --seconds 4 --size 128 --seed 1 \
    --emotion-onset 1 --expression-scale 1.6
floatalk preprocess --videos "$WORK/videos" --out "$WORK/data" --size 128 --val-fraction 0.05
floatalk train motion-ae --data "$WORK/data" --out "$WORK/motion_ae" --config demo --max-steps 4000 \
    --batch-size 8 --lr 5e-3 --adam-beta1 0.9 --adv-weight 0 --mouth-weight 10 --near-pairs 0.5 --speech-anchor 1 \
    --expression-anchor 1 --landmark-flow 100 --first-source 0.25 \
    --ema-decay 0.995 --ckpt-every 300 --sample-every 300 --seed 0
floatalk train fmt --data "$WORK/data" --motion-ae "$WORK/motion_ae" --out "$WORK/fmt" --config demo \
    --max-steps 3000 --batch-size 16 --lr 5e-4 --first-reference 0.5 --ckpt-every 500 --seed 0
python -m floatalk.training.bundle "$WORK/fmt/model" "$BUNDLE"
echo "total training time: $(( $(date +%s) - start )) s" >&2
