"""`floatalk scene`: a group photo + a voice per face -> one video of everyone talking.

A thin layer over `floatalk.render.render_scene`. Everything the user gave is checked (options,
output name, photo, faces, recordings, turns) by `prepare_scene` before the model is loaded, so a
mistake fails in a second with one sentence. Only torch-free modules are imported at the top:
building the parser (`--help`) stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions, add_flags, from_args

DTYPES = ("float32", "bfloat16", "float16")
EXCLUDED = ("crop", "face", "pose_video", "blink_from_video")
"""Generation flags a scene has no use for: it always crops, its speakers name the faces, and one
pose video would give every head the same motion."""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from floatalk.scene import SPEAKER_OPTIONS
    from floatalk.units import MAX_SCENE_SIDE

    p = sub.add_parser(
        "scene",
        help="animate several faces of a group photo, a voice per face",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Animate the faces of a group photo, each with its own voice, and write one H.264 + AAC video "
        "of the whole photo. Faces are numbered 1, 2, ... from the left (as 'floatalk generate --face' counts "
        "them), or named by a box x,y,w,h in the photo's pixels for a face the detector misses. Each face speaks "
        "with its voice and listens, mouth closed, while the others speak.",
        epilog=f"""voices, either:
  --speaker FACE=AUDIO, once per speaker          one recording per person (their own microphone); a
                                                  face speaks where its recording is loud
  --audio MIX --turns FILE                        one recording of everybody, and who speaks when
turns file (JSON, or YAML as .yaml/.yml), seconds from the start of the recording:
  [{{"start": 0.0, "end": 3.2, "face": 1}}, {{"start": 3.4, "end": 6.0, "face": 2}}]
  a face is a number (from 1 as --face counts; a file that names face 0 counts from 0) or [x, y, w, h];
  turns may not overlap nor pass the recording's end;
  with --speaker recordings, --turns says who speaks when instead of their loudness.
a speaker's own settings: --speaker-option FACE:NAME=VALUE (repeatable), NAME one of
  {", ".join(SPEAKER_OPTIONS)}
  e.g. --speaker-option 1:emotion=happy --speaker-option 2:head_motion=0.5
  the other generation flags below set every face; a speaker's own value wins for its face, and each
  face draws its noise from --seed plus its position (first speaker +0, second +1, ...) unless it sets
  its own seed.
the video: the photo's size, at most {MAX_SCENE_SIDE} px on its longer side (--max-side), even sides; its
  sound is the speakers' recordings mixed (or the mixed recording).

examples:
  floatalk scene --image group.jpg --speaker 1=ann.wav --speaker 2=bob.wav --out talk.mp4
  floatalk scene --image group.jpg --audio podcast.m4a --turns turns.json --others idle --out talk.mp4
  floatalk scene --image group.jpg --speaker 420,80,96,96=carl.wav --speaker-option 420,80,96,96:emotion=sad \\
      --out talk.mp4""",
    )
    p.add_argument("--image", required=True, metavar="PHOTO", help="the group photo: JPEG, PNG, WebP, ...")
    p.add_argument(
        "--speaker",
        action="append",
        default=[],
        metavar="FACE=AUDIO",
        help="a face (number from the left, or x,y,w,h) and its own recording; repeat for each speaker",
    )
    p.add_argument("--audio", metavar="MIX", help="one recording of every voice, with --turns")
    p.add_argument("--turns", metavar="FILE", help="JSON or YAML turns file: who speaks when (see below)")
    p.add_argument(
        "--speaker-option",
        action="append",
        default=[],
        metavar="FACE:NAME=VALUE",
        help="one of a speaker's own settings (see below); repeatable",
    )
    p.add_argument(
        "--others",
        default="still",
        choices=("still", "idle"),
        help="faces nobody names: still (as in the photo, default) or idle (they move as listeners do)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT.mp4",
        help="output video, .mp4, .mov or .mkv; written to a temporary file beside it and renamed only on success",
    )
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        default="bundled",
        help="model folder: a FLOAT release folder, a floatalk model folder, or 'bundled' (default)",
    )
    add_flags(p, GenerateOptions, exclude=EXCLUDED)
    p.add_argument(
        "--max-side",
        type=int,
        default=MAX_SCENE_SIDE,
        metavar="PX",
        help=f"longest side of the video; a bigger photo is scaled down (default {MAX_SCENE_SIDE})",
    )
    p.add_argument("--fps", type=int, default=25, help="output frame rate, 1-120 (default 25)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default cpu)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="precision of sampler and decoder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary; errors still show")
    p.set_defaults(run=run)
    return p


def parse_speakers(texts: list[str], option_texts: list[str], mixed: bool) -> list[Any]:
    """`--speaker FACE=AUDIO` and `--speaker-option FACE:NAME=VALUE` -> Speakers (unchecked options).

    With a mixed recording (`mixed`) the speakers come from the options alone (no recordings)."""
    from floatalk.scene import Speaker, option_text, parse_face

    faces: list[Any] = []
    audio: dict[int, str] = {}
    for text in texts:
        head, equals, path = text.partition("=")
        if not equals or not head.strip() or not path.strip():
            raise UserInputError(f"--speaker must read FACE=AUDIO (e.g. 1=ann.wav), got '{text}'.")
        face = parse_face(head, "--speaker's face")
        if face in faces:
            raise UserInputError(f"--speaker names face {face} twice; each face takes one voice.")
        faces.append(face)
        audio[len(faces) - 1] = path.strip()
    options: dict[int, dict[str, Any]] = {}
    for text in option_texts:
        face, name, value = option_text(text)
        if face not in faces:
            if not mixed:
                raise UserInputError(f"--speaker-option '{text}' names a face that no --speaker gives.")
            faces.append(face)
        options.setdefault(faces.index(face), {})[name] = value
    return [Speaker(face, audio.get(i), options.get(i, {})) for i, face in enumerate(faces)]


def run(args: argparse.Namespace) -> int:
    from floatalk.assets import bundled_note, resolve_model
    from floatalk.io.provenance import is_synthetic, synthetic_video_metadata
    from floatalk.io.video import check_output_path
    from floatalk.model_folders import read_config
    from floatalk.render import MAX_FPS, check_fps
    from floatalk.render.scene_cast import prepare_scene

    options = from_args(GenerateOptions, args).validate(as_flags=True)
    try:
        check_fps(args.fps)
    except UserInputError:
        raise UserInputError(f"--fps must be a whole number from 1 to {MAX_FPS} (got {args.fps}).") from None
    if args.max_side < 16:
        raise UserInputError(f"--max-side must be a whole number of pixels, at least 16 (got {args.max_side}).")
    if args.audio is not None and args.speaker:
        raise UserInputError("Give --speaker FACE=AUDIO recordings or one --audio recording with --turns, not both.")
    if args.audio is None and not args.speaker:
        raise UserInputError("Give each speaker's recording (--speaker FACE=AUDIO) or one --audio with --turns.")
    check_output_path(args.out)
    checkpoint = resolve_model(args.checkpoint)
    speakers = parse_speakers(args.speaker, args.speaker_option, mixed=args.audio is not None)
    cfg = read_config(checkpoint)
    # The photo, the faces and the recordings are read before torch is imported: a mistake fails in a second.
    scene = prepare_scene(
        args.image,
        speakers,
        options,
        audio=args.audio,
        turns=args.turns,
        others=args.others,
        sample_rate=cfg.audio.sample_rate,
    )

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu.")

    from floatalk.pipeline import FloatPipeline, reuse_freed_memory
    from floatalk.progress import GENERATION_LABELS, ProgressBar
    from floatalk.render import render_scene

    note = bundled_note(checkpoint, [args.image])
    if note:
        print(note, file=sys.stderr)
    if args.device == "cpu":
        reuse_freed_memory()
    n_model = -(-scene.cast.samples * cfg.audio.fps // cfg.audio.sample_rate)
    with ProgressBar(n_model, "frame", GENERATION_LABELS, "frames", args.quiet, "loading model") as bar:
        pipe = FloatPipeline.from_pretrained(checkpoint, device=args.device, dtype=getattr(torch, args.dtype))
        mark = synthetic_video_metadata() if is_synthetic(args.image) else None
        report = render_scene(pipe, scene, args.out, fps=args.fps, max_side=args.max_side, progress=bar, metadata=mark)
    if not args.quiet:
        for line in report.summary():
            print(line, file=sys.stderr)
    return 0
