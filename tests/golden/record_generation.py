"""Record the golden generation values (run once, before a refactor, from the repository root):

    python tests/golden/record_generation.py

Writes tests/golden/generation.json: hashes of the frames and motion the bundled model makes
for a fixed synthetic portrait and speech, through `FloatPipeline.__call__` and through the
command line (decoded mp4 frames), which tests/test_golden_generation.py compares against.
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
    values = generation_case()
    GOLDEN.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    print(json.dumps(values, indent=2))
