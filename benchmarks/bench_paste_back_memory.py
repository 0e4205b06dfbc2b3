"""Peak memory of `floatalk generate --paste-back` on a large photo, against the same run without it.

Target: the --paste-back run on a 4000 x 4000 photo peaks under 2.5 GB resident (2.5e9 bytes):
compositing each frame into the full photo and encoding the full-size video must not hold the
clip's frames in memory.

The inputs are made here, offline: a portrait of the synthetic world (the bundled demo model's
kind of face, which OpenCV's face detector finds) drawn at 256 px and upscaled with cv2.resize to
--size x --size, and --seconds of that clip's speech as a 16 kHz wav; or --photo FILE, any photo
resized to --size. Each run is `floatalk generate --image PHOTO --audio SPEECH --out OUT.mp4`
(the bundled model, no --checkpoint) in its own subprocess, once with --paste-back and once
without; the peak resident set size is the kernel's figure for that child (os.wait4's
ru_maxrss), the frames and size are read back from the written video.

    python benchmarks/bench_paste_back_memory.py [--seconds 6] [--size 4000] [--json results/paste_back.json]

Results: a table on stdout and, with --json PATH, one JSON object (machine, inputs, per run: exit
status, wall time, peak RSS, frames, video size, the command's last output lines). Exit status 1
when a run failed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

from _common import RSS_UNIT, floatalk_command, machine, print_machine, run_measured, write_json

TARGET_BYTES = 2.5e9
SAMPLE_RATE = 16000


def make_inputs(folder: Path, size: int, seconds: float, photo: Path | None) -> tuple[Path, Path]:
    """Write the --size x --size photo and the --seconds speech into `folder`; their paths."""
    import cv2
    import soundfile as sf

    from floatalk.synth import ClipSpec, make_clip

    clip = make_clip(ClipSpec(name="bench", identity=11, emotion="neutral", seed=3, seconds=seconds, size=256))
    if photo is None:
        bgr = cv2.cvtColor(clip.frames[0], cv2.COLOR_RGB2BGR)
    else:
        bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {photo} as an image")
    big = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_CUBIC)
    image_path, audio_path = folder / "photo.png", folder / "speech.wav"
    cv2.imwrite(str(image_path), big)
    sf.write(str(audio_path), clip.audio, SAMPLE_RATE, subtype="PCM_16")
    return image_path, audio_path


def video_facts(path: Path) -> dict:
    """Frames (counted from the packets, nothing decoded), width and height of a written video."""
    import av

    if not path.is_file():
        return {"frames": None, "width": None, "height": None, "bytes": None}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        frames = sum(1 for packet in container.demux(stream) if packet.size)
    return {"frames": frames, "width": width, "height": height, "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=6.0, help="length of the speech (default 6)")
    p.add_argument("--size", type=int, default=4000, help="side of the square photo in pixels (default 4000)")
    p.add_argument("--photo", type=Path, help="a photo to resize instead of the synthetic portrait")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per run (default 1800)")
    p.add_argument("--keep", type=Path, help="write inputs, videos and logs here instead of a temporary folder")
    p.add_argument(
        "--floatalk", metavar="CMD", help="how to run floatalk (default: found, see _common.floatalk_command)"
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.size < 64:
        p.error("--seconds must be positive and --size at least 64")

    info = machine()
    print_machine(info)
    floatalk = floatalk_command(args.floatalk)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        image, audio = make_inputs(folder, args.size, args.seconds, args.photo)
        print(f"photo {args.size} x {args.size} ({image}), speech {args.seconds:g} s; floatalk: {' '.join(floatalk)}")
        runs = {}
        for name, extra in (("paste_back", ["--paste-back"]), ("crop_only", [])):
            out = folder / f"{name}.mp4"
            cmd = floatalk + ["generate", "--image", str(image), "--audio", str(audio), "--out", str(out), *extra]
            print(f"running: {' '.join(cmd)}", flush=True)
            runs[name] = {**run_measured(cmd, folder / f"{name}.log", args.timeout), **video_facts(out)}
            if runs[name]["exit_status"] != 0:
                sys.stderr.write("\n".join(runs[name]["output_tail"]) + "\n")

    print(f"\n| run | exit | wall s | CPU s | peak RSS MiB | frames | video | under {TARGET_BYTES / 1e9:g} GB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in runs.items():
        video = "-" if r["frames"] is None else f"{r['width']} x {r['height']}, {r['bytes'] / 1e6:.1f} MB"
        under = "yes" if r["peak_rss_bytes"] < TARGET_BYTES else "NO"
        print(
            f"| {name} | {r['exit_status']}{' (timed out)' if r['timed_out'] else ''} | {r['wall_s']:.1f} "
            f"| {r['cpu_s']:.1f} | {r['peak_rss_bytes'] / 2**20:.0f} | {r['frames']} | {video} | {under} |"
        )
    ok = runs["paste_back"]["exit_status"] == 0 and runs["paste_back"]["peak_rss_bytes"] < TARGET_BYTES
    print(f"\n{'PASS' if ok else 'FAIL'}: --paste-back on a {args.size} px photo peaks under {TARGET_BYTES / 1e9:g} GB")
    print(
        f"(this script's own peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * RSS_UNIT / 2**20:.0f} MiB)"
    )

    if args.json:
        payload = {
            "benchmark": "paste_back_memory",
            "machine": info,
            "photo": {"size": args.size, "source": str(args.photo) if args.photo else "synthetic portrait"},
            "seconds": args.seconds,
            "target_peak_rss_bytes": TARGET_BYTES,
            "runs": runs,
            "pass": ok,
        }
        write_json(args.json, payload)
    return 0 if all(r["exit_status"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
