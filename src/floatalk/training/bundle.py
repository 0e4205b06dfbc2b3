"""Store a trained floatalk model folder as the package's bundled model (float16 weights).

Usage: python -m floatalk.training.bundle MODEL_DIR DEST_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from floatalk.checkpoint import load_model, save_pretrained
from floatalk.errors import UserInputError
from floatalk.model_folders import CONFIG_FILE, read_json


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    src, dst = args
    try:
        model = load_model(src)
    except UserInputError as exc:
        print(f"bundle: error: {exc}", file=sys.stderr)
        return 2
    extra = {k: v for k, v in read_json(Path(src) / CONFIG_FILE).items() if k not in ("format_version", "config")}
    folder = save_pretrained(model, dst, extra=extra, dtype=torch.float16)
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    print(f"wrote {folder} ({size:.1f} MB, float16)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
