"""Peak memory of `floatalk generate` on photos of every shape: square, wide, tall, the widest
accepted (32:1 at 16384 px) and an absurd strip (16 x 1,000,000 px, a 47 kB PNG).

Target: memory follows the photo's pixel count, whatever its shape. Before the shape limits and
the linear letterbox, the strip passed the pixel limit and letterboxing it asked OpenCV for
11.8 GB; now it is refused in one sentence from the file's header.

The inputs are made here, offline: the synthetic world's portrait (the bundled model's kind of
face) scaled to the photo's short side and centred on a gray canvas of the photo's size, and
--seconds of that clip's speech. Each run is `floatalk generate --checkpoint bundled` in its own
subprocess, in each --modes: `no-crop` (the whole photo letterboxed), `crop` (the face found and
cropped) and `paste-back` (the face crop pasted back into the full photo: the video has the
photo's size). Peak RSS is the kernel's figure for the child (os.wait4); every child gets
--memory-limit GiB of address space, so a runaway run fails instead of taking the machine.

    python benchmarks/bench_image_shapes.py [--seconds 1] [--modes no-crop crop paste-back] [--json PATH]

Results: a table on stdout and, with --json PATH, one JSON object (machine, per run: shape, mode,
exit status, wall time, peak RSS, the command's last line). Exit status 1 when a run that should
succeed failed, or one that should be refused was not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import floatalk_command, machine, print_machine, run_measured, write_json

SAMPLE_RATE = 16000
SHAPES = {  # name -> (width, height); only "extreme" is refused
    "square": (4096, 4096),
    "wide": (8192, 1024),
    "tall": (1024, 8192),
    "widest": (16384, 512),
    "extreme": (1_000_000, 16),
}
MODES = {"no-crop": ["--no-crop"], "crop": [], "paste-back": ["--paste-back"]}


def make_photo(path: Path, width: int, height: int, face) -> None:
    """The portrait scaled to the short side, centred on a gray canvas of width x height."""
    import cv2
    import numpy as np

    side = min(width, height)
    canvas = np.full((height, width, 3), 96, np.uint8)
    portrait = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA if side < face.shape[0] else cv2.INTER_CUBIC)
    x0, y0 = (width - side) // 2, (height - side) // 2
    canvas[y0 : y0 + side, x0 : x0 + side] = portrait
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def make_inputs(folder: Path, seconds: float, shapes: list[str]) -> tuple[dict[str, Path], Path]:
    import soundfile as sf

    from floatalk.synth import ClipSpec, make_clip

    clip = make_clip(ClipSpec(name="bench", identity=11, emotion="neutral", seed=3, seconds=seconds, size=256))
    photos = {}
    for name in shapes:
        photos[name] = folder / f"{name}.png"
        make_photo(photos[name], *SHAPES[name], clip.frames[0])
    speech = folder / "speech.wav"
    sf.write(str(speech), clip.audio, SAMPLE_RATE, subtype="PCM_16")
    return photos, speech


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=1.0, help="length of the speech (default 1)")
    p.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES), help="photo shapes to run")
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES), help="how the photo is used")
    p.add_argument("--memory-limit", type=float, default=8.0, help="GiB of address space per run (default 8)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per run (default 900)")
    p.add_argument("--keep", type=Path, help="write inputs, videos and logs here instead of a temporary folder")
    p.add_argument("--floatalk", metavar="CMD", help="how to run floatalk (default: found, see _common)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)

    info = machine()
    print_machine(info)
    floatalk = floatalk_command(args.floatalk)
    limit = int(args.memory_limit * 2**30)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        photos, speech = make_inputs(folder, args.seconds, args.shapes)
        for shape in args.shapes:
            width, height = SHAPES[shape]
            for mode in args.modes:
                out = folder / f"{shape}_{mode}.mp4"
                cmd = [*floatalk, "generate", "--checkpoint", "bundled", "--image", str(photos[shape])]
                cmd += ["--audio", str(speech), "--out", str(out), "--quiet", *MODES[mode]]
                print(f"running: {shape} {width}x{height} {mode}", flush=True)
                run = run_measured(cmd, folder / f"{shape}_{mode}.log", args.timeout, memory_limit=limit)
                refused = run["exit_status"] == 2
                expected = shape == "extreme" or (mode != "no-crop" and min(width, height) < 64)  # no face to find
                runs.append(
                    {
                        "shape": shape,
                        "width": width,
                        "height": height,
                        "photo_bytes": photos[shape].stat().st_size,
                        "mode": mode,
                        **run,
                        "refused": refused,
                        "as_expected": refused if expected else run["exit_status"] == 0,
                    }
                )

    print("\n| photo | pixels | PNG | mode | exit | wall s | peak RSS MiB | last line |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        last = r["output_tail"][-1] if r["output_tail"] else ""
        if len(last) > 90:
            last = last[:87] + "..."
        print(
            f"| {r['shape']} {r['width']}x{r['height']} | {r['width'] * r['height'] / 1e6:.1f} MP "
            f"| {r['photo_bytes'] / 1e3:.0f} kB | {r['mode']} | {r['exit_status']} | {r['wall_s']:.1f} "
            f"| {r['peak_rss_bytes'] / 2**20:.0f} | {last} |"
        )
    ok = all(r["as_expected"] for r in runs)
    verdict = "PASS" if ok else "FAIL"
    print(f"\n{verdict}: every run ended as expected (refused: only the absurd strip, and faces too small to find)")
    if args.json:
        write_json(
            args.json,
            {"benchmark": "image_shapes", "machine": info, "seconds": args.seconds, "runs": runs, "pass": ok},
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
