"""Record the golden generation values (run once, before a refactor, from the repository root):

    python tests/golden/record_generation.py

Adds this machine's record to tests/golden/generation.json: hashes of the frames and motion the
bundled model makes for a fixed synthetic portrait and speech, through `FloatPipeline.__call__`
and through the command line (decoded mp4 frames), which tests/test_golden_generation.py
compares against. Run it on a kind of machine with no record yet, with the code as it was
before the change under test (e.g. a `git worktree` of the last commit). `--machine` names it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from golden_cases import GOLDEN, generation_case  # noqa: E402


def digest(array) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Record this machine's golden generation values.")
    parser.add_argument("--machine", required=True, help="what kind of machine this is (CPU model, features)")
    args = parser.parse_args()
    values = generation_case()
    values["machine"] = args.machine
    data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {"records": []}
    data["records"].append(values)
    GOLDEN.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(json.dumps(values, indent=2))
