"""Peak memory and time of reading a driving (or pose) video into face crops, as `floatalk
reenact` and `--pose-video` do, on a long high-resolution clip made offline.

The clip: a synthetic face (the bundled example's portrait, 400 px) swaying on a flat
background, `--seconds` long at 25 fps and `--width` x `--height`. It is read by
`floatalk.io.driving.load_face_video` (face crop, the model's 128 px) in a fresh Python
process, whose peak RSS is reported with the time taken and a digest of the crops.
Target: memory that does not grow with the clip's decoded size (a 20 s 720p clip decodes to
1.4 GB of frames).

    python benchmarks/bench_driving_memory.py --seconds 20 --json outputs/bench/driving_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_machine, write_json  # noqa: E402

READ = """
import hashlib, json, resource, sys, time
from floatalk.io.driving import load_face_video
start = time.perf_counter()
crops = load_face_video(sys.argv[1], 128, 25, crop=True)
print(json.dumps({"frames": len(crops), "seconds": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "digest": hashlib.sha256(crops.tobytes()).hexdigest()[:16]}))
"""


def make_clip(path: Path, seconds: float, width: int, height: int) -> None:
    import cv2
    import numpy as np

    from floatalk.apps.examples import write_example
    from floatalk.io.video import VideoWriter

    face = cv2.resize(write_example(path.parent / "example", seconds=0.5).frames[0], (400, 400))
    top = (height - 400) // 2
    with VideoWriter(path, fps=25) as writer:
        for i in range(int(seconds * 25)):
            frame = np.full((height, width, 3), 90, np.uint8)
            x = (width - 400) // 2 + int(40 * np.sin(i / 10))
            frame[top : top + 400, x : x + 400] = face
            writer.write(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20)")
    parser.add_argument("--width", type=int, default=1280, help="frame width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="frame height (default 720)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    info = machine()
    print_machine(info)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "driving.mp4"
        make_clip(clip, args.seconds, args.width, args.height)
        run = subprocess.run([sys.executable, "-c", READ, str(clip)], capture_output=True, text=True, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    decoded_mib = args.seconds * 25 * args.width * args.height * 3 / 2**20
    print(
        f"{args.seconds:g} s at {args.width}x{args.height} (decoded frames {decoded_mib:.0f} MiB): "
        f"{result['frames']} crops in {result['seconds']:.1f} s, peak RSS {result['peak_rss_mib']:.0f} MiB "
        f"(crops {result['digest']})"
    )
    if args.json:
        write_json(args.json, {"machine": info, **vars(args), "json": None, "decoded_mib": decoded_mib, **result})


if __name__ == "__main__":
    main()
