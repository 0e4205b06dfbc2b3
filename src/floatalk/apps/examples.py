"""The example inputs the bundled model knows: a synthetic portrait and synthetic speech from the
synthetic world (floatalk.synth), written as a user's files would be (PNG, 16-bit PCM WAV).

`floatalk demo`, the web page's one-click example and the API's tests use them. The portrait is
the clip's first frame, neutral: the clip's own expression only eases in after DEMO_ONSET s.
Synthetic portraits fill the frame, so they are animated uncropped (`EXAMPLE_OPTIONS`).
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLE_OPTIONS", "Example", "ExampleInChild", "example_files", "write_example"]

EXAMPLE_OPTIONS: dict[str, Any] = {"crop": False}
"""The job options the example needs (as `floatalk.apps.jobs.parse_options` reads them)."""


@dataclass(frozen=True)
class Example:
    """Files written by `write_example` and what they show."""

    image: Path
    audio: Path
    emotion: str  # the synthetic speaker's emotion
    identity: int  # the synthetic speaker's seed
    frames: Any = field(repr=False)  # (T, S, S, 3) uint8: the synthetic world's own rendering of the speech


def write_example(
    folder: str | os.PathLike,
    seconds: float = 4.0,
    seed: int | None = None,
    size: int | None = None,
    frames: bool = True,
) -> Example:
    """Write `portrait.png` and `speech.wav` into `folder` (made if missing) and return them.

    seconds: length of the speech; seed: the synthetic speaker (default the demo's); size: the
    portrait's side in pixels (default the bundled model's); frames: draw the world's whole clip
    into `Example.frames` (False: only its first frame, the portrait, which is quicker)."""
    import soundfile as sf
    from PIL import Image

    from floatalk.assets import BUNDLED, DEMO_EXPRESSION_SCALE, DEMO_ONSET, DEMO_SEED, resolve_model
    from floatalk.fileio import atomic_path
    from floatalk.io.provenance import synthetic_png_info
    from floatalk.model_folders import read_config
    from floatalk.synth.world import clip_specs, make_clip
    from floatalk.units import SAMPLE_RATE

    if size is None:
        size = read_config(resolve_model(BUNDLED)).motion_ae.size
    onset = min(DEMO_ONSET, seconds / 2)
    spec = clip_specs(
        1, seconds, size, DEMO_SEED if seed is None else seed, onset=onset, expression_scale=DEMO_EXPRESSION_SCALE
    )[0]
    clip = make_clip(spec, draw=None if frames else 1)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    portrait, speech = folder / "portrait.png", folder / "speech.wav"
    # Each file whole or not at all; a full disk or a read-only folder is one sentence naming it.
    with atomic_path(portrait, ".png") as tmp:
        Image.fromarray(clip.frames[0]).save(tmp, format="PNG", pnginfo=synthetic_png_info())  # a drawn face: marked
    with atomic_path(speech, ".wav") as tmp:
        sf.write(tmp, clip.audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return Example(image=portrait, audio=speech, emotion=spec.emotion, identity=spec.identity, frames=clip.frames)


_writing: dict[Path, concurrent.futures.Future[tuple[Path, Path]]] = {}
_writing_lock = threading.Lock()


def example_files(folder: str | os.PathLike, seconds: float = 4.0) -> concurrent.futures.Future[tuple[Path, Path]]:
    """The example's (portrait, speech) in `folder`: at once when they are there, else written in
    the background (rendering the synthetic clip takes seconds), so a page starts without waiting.
    Pages that ask for the same folder in one process (the web page and the live page) share one
    writing, so the files are never written twice at once."""
    folder = Path(folder).resolve()
    portrait, speech = folder / "portrait.png", folder / "speech.wav"
    with _writing_lock:
        pending = _writing.get(folder)
        if pending is not None and not (pending.done() and pending.exception() is not None):
            return pending
        if portrait.is_file() and speech.is_file():
            done: concurrent.futures.Future[tuple[Path, Path]] = concurrent.futures.Future()
            done.set_result((portrait, speech))
            return done

        def write() -> tuple[Path, Path]:
            written = write_example(folder, seconds=seconds)
            return written.image, written.audio

        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="floatalk-example")
        future = pool.submit(write)
        pool.shutdown(wait=False)
        _writing[folder] = future
        return future


class ExampleInChild:
    """`write_example` in a forked child process, started before the caller imports torch.

    Synthesising the example spends about a second in imports (scipy.signal) and numpy work that
    overlaps with the caller's own start-up (importing torch, loading the model) on a second core:
    `floatalk demo` hands its first frame on that much sooner. `result()` waits for the child and
    returns what `write_example` would have, or raises what it raised. Where fork is not the
    platform's way (not Linux), the example is written in this process by `result()`.
    """

    def __init__(self, folder: str | os.PathLike, seconds: float, seed: int | None) -> None:
        import multiprocessing

        self._args = (folder, seconds, seed)
        self._child: Any = None
        if sys.platform == "linux":
            context = multiprocessing.get_context("fork")
            self._answer, send = context.Pipe(duplex=False)
            self._child = context.Process(target=_example_to_pipe, args=(send, *self._args), daemon=True)
            self._child.start()
            send.close()

    def result(self) -> Example:
        """The example's files and truth (only the portrait as `frames`): (1, S, S, 3)."""
        if self._child is None:
            return write_example(*self._args, frames=False)
        try:
            answer = self._answer.recv()
        except EOFError:
            answer = None
        finally:
            self._answer.close()
            self._child.join()
        if answer is None:
            raise RuntimeError(f"the example's process ended with code {self._child.exitcode} before writing it")
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _example_to_pipe(send: Any, folder: str | os.PathLike, seconds: float, seed: int | None) -> None:
    """The child of `ExampleInChild`: sends the Example, or the exception that stopped it."""
    try:
        answer: Any = write_example(folder, seconds, seed, frames=False)
    except Exception as exc:  # handed to the parent, which raises it
        answer = exc
    try:
        send.send(answer)
    except Exception:  # an exception that does not pickle: its sentence
        send.send(RuntimeError(str(answer)))
    send.close()
