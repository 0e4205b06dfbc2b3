"""The web page (Gradio): a photo and a recording in, a talking video out, through the job queue
the HTTP API uses.

The page puts every job into the same `floatalk.apps.queue.JobQueue` as the API, with the same
options mapping (`floatalk.apps.jobs.parse_options` keys), then follows the job's record until
it is done and shows the video, or the job's error in one sentence. The motion controls are
generate's flags; the timeline table becomes the `{"segments": [...]}` object of docs/MOTION.md.

The table and controls are turned into options by plain functions (`timeline_from_rows`,
`options_from_controls`) that need no Gradio. Gradio itself is imported only by `build_ui` and
`mount_ui`, after analytics are switched off (`GRADIO_ANALYTICS_ENABLED=False`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError

if TYPE_CHECKING:
    import gradio as gr
    from fastapi import FastAPI

    from floatalk.apps.queue import JobQueue, JobRecord
    from floatalk.apps.uploads import Limits

__all__ = [
    "TIMELINE_COLUMNS",
    "build_ui",
    "cancel_job",
    "describe",
    "follow_job",
    "mount_ui",
    "options_from_controls",
    "page_words",
    "stage_inputs",
    "submit_files",
    "timeline_from_rows",
]

TIMELINE_COLUMNS: tuple[str, ...] = (
    "start",
    "end",
    "emotion",
    "e_cfg_scale",
    "head_motion",
    "mouth_scale",
    "expression_scale",
    "blink",
)
"""The columns of the timeline table, in order: a segment's fields (docs/MOTION.md)."""

_NUMBER_COLUMNS = ("start", "end", "e_cfg_scale", "head_motion", "mouth_scale", "expression_scale")
_TRUE = ("yes", "true", "on", "1", "y")
_FALSE = ("no", "false", "off", "0", "n")
_STAGE_LABELS = {
    "start": "starting",
    "emotion": "reading the emotion",
    "audio": "audio features",
    "motion": "sampling motion",
    "frames": "decoding frames",
}


def _blank(value: Any) -> bool:
    """An empty table cell: None, blank text or NaN (how Gradio and pandas leave an empty cell)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _cell_number(value: Any, row: int, column: str) -> float:
    if isinstance(value, bool):
        raise UserInputError(f"Timeline row {row}: {column} must be a number (got {value!r}).")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"Timeline row {row}: {column} must be a number (got {value!r}).") from None
    if not math.isfinite(number):
        raise UserInputError(f"Timeline row {row}: {column} must be a finite number (got {value!r}).")
    return number


def _cell_bool(value: Any, row: int) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserInputError(f"Timeline row {row}: blink must be yes or no, or left empty (got {value!r}).")


def _rows(table: Any) -> list[list[Any]]:
    """The table's rows as lists, from a list of lists, a pandas DataFrame or Gradio's value dict."""
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):  # a pandas DataFrame
        return [list(row) for row in table.values.tolist()]
    if isinstance(table, Mapping) and "data" in table:
        table = table["data"]
    if not isinstance(table, Sequence) or isinstance(table, str):
        raise UserInputError("The timeline must be a table of rows.")
    rows = []
    for row in table:
        if not isinstance(row, Sequence) or isinstance(row, str):
            raise UserInputError("The timeline must be a table of rows.")
        rows.append(list(row))
    return rows


def timeline_from_rows(table: Any, transition: float | None = None) -> dict[str, Any] | None:
    """The timeline object `{"segments": [...]}` of the table's filled rows, or None when every row
    is empty. Columns are `TIMELINE_COLUMNS`; an empty cell leaves that setting to the controls;
    transition: the ramp between segments in seconds (None: the timeline's default).

    A row that cannot be a segment is a UserInputError naming its row (counted from 1), e.g. a
    missing start, a word where a number belongs, an unknown emotion, segments that overlap."""
    from floatalk.timeline import Timeline

    segments: list[dict[str, Any]] = []
    row_numbers: list[int] = []
    for number, cells in enumerate(_rows(table), start=1):
        if len(cells) > len(TIMELINE_COLUMNS):
            extra = cells[len(TIMELINE_COLUMNS) :]
            if not all(_blank(c) for c in extra):
                raise UserInputError(
                    f"Timeline row {number} has {len(cells)} cells; the columns are: {', '.join(TIMELINE_COLUMNS)}."
                )
        values = dict(zip(TIMELINE_COLUMNS, cells))
        if all(_blank(v) for v in values.values()):
            continue
        segment: dict[str, Any] = {}
        for column in ("start", "end"):
            if _blank(values.get(column)):
                raise UserInputError(f"Timeline row {number} needs a {column} time in seconds.")
        for column, value in values.items():
            if _blank(value):
                continue
            if column in _NUMBER_COLUMNS:
                segment[column] = _cell_number(value, number, column)
            elif column == "blink":
                segment[column] = _cell_bool(value, number)
            else:
                emotion = str(value).strip().lower()
                if emotion not in ("auto", *EMOTIONS):
                    raise UserInputError(
                        f"Timeline row {number}: emotion must be 'auto' or one of {', '.join(EMOTIONS)} "
                        f"(got {value!r})."
                    )
                segment[column] = emotion
        segments.append(segment)
        row_numbers.append(number)
    if not segments:
        return None
    timeline: dict[str, Any] = {"segments": segments}
    if transition is not None:
        timeline["transition"] = transition  # Timeline checks it: a number of seconds from 0 to 10
    try:
        Timeline.from_dict(timeline)
    except UserInputError as exc:  # name the table's rows, not the object's list indices
        message = re.sub(r"segments\[(\d+)\]", lambda m: f"row {row_numbers[int(m.group(1))]}", str(exc))
        raise UserInputError(message) from None
    return timeline


def options_from_controls(
    *,
    emotion: str = "auto",
    head_motion: float = 1.0,
    mouth_scale: float = 1.0,
    expression_scale: float = 1.0,
    blink: bool = True,
    a_cfg_scale: float = 2.0,
    e_cfg_scale: float = 1.0,
    seed: float | int | None = None,
    crop: bool = True,
    timeline: Any = None,
    transition: float | None = None,
    blink_from_video: bool = False,
    pose_video: bool = False,
) -> dict[str, Any]:
    """The job options (the API's keys, `floatalk.apps.jobs.parse_options`) that the page's
    controls set; checked here, so a bad value is one UserInputError before anything is queued.

    seed: None (an empty box) keeps generate's default; timeline: the table's rows; transition:
    the timeline's ramp between segments in seconds (None: the timeline's default, 0.4);
    blink_from_video: blinks from the head-motion video too; pose_video: whether the page has
    such a video (the file itself goes beside the options, `submit_files`)."""
    from floatalk.apps.jobs import check_client_options

    options: dict[str, Any] = {
        "emotion": (emotion or "auto").strip().lower(),
        "head_motion": head_motion,
        "mouth_scale": mouth_scale,
        "expression_scale": expression_scale,
        "blink": bool(blink),
        "a_cfg_scale": a_cfg_scale,
        "e_cfg_scale": e_cfg_scale,
        "crop": bool(crop),
    }
    if seed is not None and not _blank(seed):
        options["seed"] = seed
    segments = timeline_from_rows(timeline, None if _blank(transition) else transition)
    if segments is not None:
        options["timeline"] = segments
    if blink_from_video:
        options["blink_from_video"] = True
    try:
        check_client_options(options, pose_video=pose_video)
    except UserInputError as exc:
        raise UserInputError(page_words(str(exc))) from None
    return options


def stage_inputs(
    image: str | os.PathLike,
    audio: str | os.PathLike,
    folder: str | os.PathLike,
    pose_video: str | os.PathLike | None = None,
) -> tuple[Path, Path, Path | None]:
    """Copy the page's uploaded files into `folder` (queue.submit moves what it is given, and the
    uploads belong to Gradio's cache): the image, the audio and the head-motion video (None when
    there is none). Names keep their suffixes, which tell the readers the format."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def copy(kind: str, source: str | os.PathLike) -> Path:
        source = Path(source)
        if not source.is_file():
            raise UserInputError(f"The uploaded {kind} file is gone; please add it again.")
        target = folder / f"{kind}{source.suffix.lower()}"
        shutil.copyfile(source, target)
        return target

    image_copy, audio_copy = copy("image", image), copy("audio", audio)
    return image_copy, audio_copy, None if pose_video is None else copy("video", pose_video)


def describe(record: JobRecord) -> str:
    """One line for the page about where a job stands."""
    if record.state == "queued":
        return f"Job {record.id}: waiting in the queue."
    if record.state == "running" and getattr(record, "cancel_requested", False):
        return f"Job {record.id}: cancelling (it stops within a window of motion)."
    if record.state == "running":
        stage = _STAGE_LABELS.get(record.stage or "", record.stage or "running")
        return f"Job {record.id}: {stage}."  # the progress bar shows how far
    if record.state == "done":
        elapsed = ""
        if record.started is not None and record.finished is not None:
            elapsed = f" in {record.finished - record.started:.1f} s"
        return f"Job {record.id}: done{elapsed}."
    if record.state == "cancelled":
        return f"Job {record.id}: cancelled."
    return f"Job {record.id}: failed: {record.error or 'no reason was given'}"


_FLAG_WORDS = (
    ("pass --no-crop", "turn off 'Crop to the face'"),
    ("The 'pose_video' upload", "The head-motion video"),
    (
        "Option 'blink_from_video' needs a pose video (the file part 'pose_video').",
        "Blinks from the video need a head-motion video: add one, or untick 'Blinks from the video'.",
    ),
)
"""How an error names a command-line flag or an API field, and what the page calls it instead."""


def page_words(message: str) -> str:
    """An error sentence in the page's words (a control's name where it names a flag or a field)."""
    for flag, words in _FLAG_WORDS:
        message = message.replace(flag, words)
    return message


def _import_gradio() -> Any:
    """Gradio, with its usage analytics off (it would otherwise phone home when the app starts)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import gradio

    return gradio


@contextlib.contextmanager
def _staging() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="floatalk-ui-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _publish(video: Path, folder: Path, job_id: str, keep_s: float = 86400.0) -> str:
    """Place the finished video where the page serves it from (a hard link when the file system
    allows, else a copy); links older than `keep_s` seconds are removed on the way."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.iterdir():
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > keep_s:
                old.unlink()
    target = folder / f"{job_id}{video.suffix}"
    target.unlink(missing_ok=True)
    try:
        os.link(video, target)
    except OSError:
        shutil.copyfile(video, target)
    return str(target)


def submit_files(
    queue: JobQueue,
    image: str | os.PathLike | None,
    audio: str | os.PathLike | None,
    options: dict[str, Any],
    limits: Limits | None = None,
    pose_video: str | os.PathLike | None = None,
) -> JobRecord:
    """Queue a job for the page's files: copies are submitted (queue.submit moves what it is
    given; the originals stay in Gradio's cache). pose_video: a video whose head motion the face
    follows (generate's --pose-video), or None. A missing file, or with `limits` a file the API
    would refuse (not an image, a recording or a video, too many pixels, too long), is a
    UserInputError; a full queue raises the queue's QueueFullError."""
    if not image:
        raise UserInputError("Add a portrait photo first (upload one, take one with the webcam, or use the example).")
    if not audio:
        raise UserInputError("Add a speech recording first (upload one, record one, or use the example).")
    with _staging() as folder:
        staged_image, staged_audio, staged_video = stage_inputs(image, audio, folder, pose_video or None)
        if limits is not None:
            from floatalk.apps.uploads import UploadError, check_audio, check_image, check_video

            try:
                check_image(staged_image, limits)
                timeline = (options or {}).get("timeline")
                check_audio(staged_audio, limits, timeline if isinstance(timeline, dict) else None)
                if staged_video is not None:
                    check_video(staged_video)
            except UploadError as exc:
                raise UserInputError(page_words(str(exc))) from None
        return queue.submit(staged_image, staged_audio, options, pose_video=staged_video)


def follow_job(
    queue: JobQueue, job_id: str, report: Callable[[JobRecord], None] | None = None, poll: float = 1.0
) -> tuple[JobRecord, Path | None]:
    """Wait until the job ends, calling report(record) at each change; returns its last record and
    its video (None when it was cancelled). A failed job raises UserInputError with its error."""
    from floatalk.apps.queue import FINAL_STATES

    record = queue.get(job_id)
    while record is not None and record.state not in FINAL_STATES:
        if report is not None:
            report(record)
        record = queue.wait(job_id, record.updated, poll)
    if record is None:
        raise UserInputError(f"Job {job_id} is no longer in the queue.")
    if record.state == "failed":
        raise UserInputError(record.error or f"Job {job_id} failed.")
    if record.state != "done":
        return record, None
    video = queue.video(job_id)
    if video is None:
        raise UserInputError(f"Job {job_id} finished but its video is missing.")
    return record, video


def _example_files(folder: Path, seconds: float) -> concurrent.futures.Future[tuple[Path, Path]]:
    """The example's (portrait, speech) in `folder`: at once when they are there, else written in
    the background (rendering the synthetic clip takes seconds), so the page starts without waiting."""
    portrait, speech = folder / "portrait.png", folder / "speech.wav"
    if portrait.is_file() and speech.is_file():
        done: concurrent.futures.Future[tuple[Path, Path]] = concurrent.futures.Future()
        done.set_result((portrait, speech))
        return done

    def write() -> tuple[Path, Path]:
        from floatalk.apps.examples import write_example

        written = write_example(folder, seconds=seconds)
        return written.image, written.audio

    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="floatalk-example")
    future = pool.submit(write)
    pool.shutdown(wait=False)
    return future


def cancel_job(queue: JobQueue, job_id: str | None) -> str:
    """Cancel the page's job; returns the line the page shows about it."""
    job_id = (job_id or "").strip()
    if not job_id:
        return "There is no job to cancel yet."
    record = queue.cancel(job_id)
    if record is None:
        return f"Job {job_id} is not in the queue."
    return describe(record)


def build_ui(
    queue: JobQueue, *, example_dir: str | os.PathLike, example_seconds: float = 4.0, limits: Limits | None = None
) -> gr.Blocks:
    """The page as a Gradio Blocks whose jobs go into `queue` (shared with the API).

    example_dir: where the one-click example's portrait and speech are written (made once), and
    where finished videos are linked for the page to serve; whoever mounts the page passes this
    folder in Gradio's `allowed_paths` unless it lies in the temporary folder (`mount_ui` does).
    example_seconds: the example speech's length; limits: the API's upload limits, which the page's
    files must meet too (default `floatalk.apps.uploads.Limits()`, the API's defaults)."""
    gr = _import_gradio()
    from floatalk.apps.examples import EXAMPLE_OPTIONS
    from floatalk.apps.queue import QueueFullError
    from floatalk.apps.uploads import Limits
    from floatalk.options import MAX_MOTION_SCALE, GenerateOptions

    limits = limits or Limits()
    example_dir = Path(example_dir)
    example = _example_files(example_dir, example_seconds)
    videos = example_dir / "videos"  # finished videos, as the page serves them
    defaults = GenerateOptions()
    slider_max = min(3.0, MAX_MOTION_SCALE)

    def generate(
        image: str | None,
        audio: str | None,
        emotion: str,
        head_motion: float,
        mouth_scale: float,
        expression_scale: float,
        blink: bool,
        a_cfg_scale: float,
        e_cfg_scale: float,
        seed: float | None,
        crop: bool,
        timeline: Any,
        transition: float | None,
        pose_video: str | None,
        blink_from_video: bool,
        progress: Any = gr.Progress(),  # noqa: B008 - Gradio's way to ask for a progress bar
    ) -> Iterator[tuple[str, str, Any]]:
        try:
            options = options_from_controls(
                emotion=emotion,
                head_motion=head_motion,
                mouth_scale=mouth_scale,
                expression_scale=expression_scale,
                blink=blink,
                a_cfg_scale=a_cfg_scale,
                e_cfg_scale=e_cfg_scale,
                seed=seed,
                crop=crop,
                timeline=timeline,
                transition=transition,
                blink_from_video=blink_from_video,
                pose_video=bool(pose_video),
            )
            record = submit_files(queue, image, audio, options, limits, pose_video=pose_video)
        except UserInputError as exc:
            raise gr.Error(str(exc)) from None
        except QueueFullError as exc:
            raise gr.Error(str(exc) or f"The queue is full; try again in {exc.retry_after} s.") from None
        yield record.id, describe(record), None

        def report(latest: JobRecord) -> None:
            progress(latest.progress, desc=describe(latest))

        try:
            record, video = follow_job(queue, record.id, report)
        except UserInputError as exc:  # the job failed: say so beside the video and in the error box
            reason = page_words(str(exc))
            yield record.id, f"Job {record.id}: failed: {reason}", None
            raise gr.Error(reason) from None
        yield record.id, describe(record), _publish(video, videos, record.id) if video is not None else None

    def intensity(value: float, label: str, info: str) -> Any:
        """A motion intensity's slider (0 to slider_max, 1 as generated)."""
        return gr.Slider(0, slider_max, value=value, step=0.05, label=label, info=info)

    # delete_cache: Gradio's copies of uploads and videos older than a day go, checked hourly.
    with gr.Blocks(title="floatalk", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        gr.Markdown(
            "# floatalk: a talking portrait from one photo and a recording\n"
            "Give a portrait photo and a speech recording, choose how the face moves, and press **Generate**. "
            "Jobs wait in the same queue as the HTTP API. The bundled demo model only knows floatalk's "
            "synthetic drawn faces: press *Use the example* to see it work (real photos need the FLOAT "
            "release weights)."
        )
        emotion = gr.Dropdown(
            ["auto", *EMOTIONS],
            value=defaults.emotion,
            label="Emotion",
            info="auto predicts it from the speech; a name redirects the face",
            elem_id="emotion",
            render=False,
        )
        crop = gr.Checkbox(
            value=defaults.crop,
            label="Crop to the face",
            info="off animates the whole photo (letterboxed to a square)",
            elem_id="crop",
            render=False,
        )
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(
                    label="Portrait photo",
                    sources=["upload", "webcam"],
                    type="filepath",
                    image_mode=None,
                    height=256,
                    elem_id="photo",
                )
                audio = gr.Audio(
                    label="Speech", sources=["upload", "microphone"], type="filepath", format=None, elem_id="speech"
                )
                use_example = gr.Button(
                    "Use the example (a synthetic speaker the bundled model knows; crop off)",
                    size="sm",
                    elem_id="example",
                )
                with gr.Row():
                    submit = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
                with gr.Row():
                    emotion.render()
                    crop.render()
                with gr.Accordion("Motion", open=True):
                    head_motion = intensity(
                        defaults.head_motion,
                        "Head motion",
                        "0 holds the photo's pose, 1 as generated, above 1 amplified",
                    )
                    mouth_scale = intensity(
                        defaults.mouth_scale, "Mouth", "lip motion: 0 closes the mouth, above 1 exaggerates"
                    )
                    expression_scale = intensity(
                        defaults.expression_scale, "Expression", "brows and eyes: 0 holds the photo's expression"
                    )
                    blink = gr.Checkbox(value=defaults.blink, label="Blink", info="off holds the eyes' openness")
                with gr.Accordion("Head motion from a video", open=False):
                    gr.Markdown(
                        "The head moves as in this video (of anyone; upload one or record one with the webcam) "
                        "while the lips and the expression follow the speech."
                    )
                    pose_video = gr.Video(
                        label="Head-motion video",
                        sources=["upload", "webcam"],
                        height=200,
                        elem_id="pose_video",
                    )
                    blink_from_video = gr.Checkbox(
                        value=False,
                        label="Blinks from the video",
                        info="the eyes blink when the video's do, instead of as generated",
                        elem_id="blink_from_video",
                    )
                with gr.Accordion("Guidance and seed", open=False):
                    a_cfg_scale = gr.Slider(
                        0,
                        5,
                        value=defaults.a_cfg_scale,
                        step=0.1,
                        label="Audio guidance",
                        info="higher follows the speech more strongly",
                    )
                    e_cfg_scale = gr.Slider(
                        0,
                        5,
                        value=defaults.e_cfg_scale,
                        step=0.1,
                        label="Emotion guidance",
                        info="higher exaggerates the emotion",
                    )
                    seed = gr.Number(value=defaults.seed, precision=0, label="Seed", info="same seed, same video")
                with gr.Accordion("Timeline", open=False):
                    gr.Markdown(
                        "Each row changes the settings from *start* to *end* (seconds); an empty cell keeps the "
                        "setting above. Emotion: auto or a name; blink: yes or no."
                    )
                    timeline = gr.Dataframe(
                        value=[[""] * len(TIMELINE_COLUMNS) for _ in range(3)],
                        headers=list(TIMELINE_COLUMNS),
                        datatype="str",
                        type="array",
                        interactive=True,
                        label="Timeline",
                        column_widths=["80px"] * len(TIMELINE_COLUMNS),
                        elem_id="timeline",
                    )
                    transition = gr.Number(
                        value=0.4,
                        minimum=0,
                        maximum=10,
                        label="Ramp (s)",
                        info="how long a change between segments takes",
                        elem_id="transition",
                    )
            with gr.Column(scale=1):
                video = gr.Video(label="Video", interactive=False, buttons=["download"], height=420, elem_id="video")
                status = gr.Markdown("", elem_id="status")
                job = gr.Textbox(label="Job", interactive=False, elem_id="job")
        submit.click(
            generate,
            inputs=[
                image,
                audio,
                emotion,
                head_motion,
                mouth_scale,
                expression_scale,
                blink,
                a_cfg_scale,
                e_cfg_scale,
                seed,
                crop,
                timeline,
                transition,
                pose_video,
                blink_from_video,
            ],
            outputs=[job, status, video],
            show_progress_on=[video],
            api_visibility="private",
            concurrency_limit=None,
        )
        use_example.click(
            lambda: (*map(str, example.result()), bool(EXAMPLE_OPTIONS.get("crop", True)), "auto"),
            outputs=[image, audio, crop, emotion],
            api_visibility="private",
        )
        stop.click(lambda job_id: cancel_job(queue, job_id), inputs=[job], outputs=[status], api_visibility="private")
    return page


def mount_ui(
    app: FastAPI,
    queue: JobQueue,
    path: str = "/ui",
    *,
    example_dir: str | os.PathLike | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """Mount the page on `app` at `path` (the API's FastAPI app or one of its own), sharing `queue`.

    example_dir: where the example files go (default: a new temporary folder); limits: the upload
    limits (default the API's); Gradio refuses a file over `limits.max_upload_bytes` as it arrives."""
    from floatalk.apps.uploads import Limits

    gr = _import_gradio()
    limits = limits or Limits()
    if example_dir is None:
        example_dir = tempfile.mkdtemp(prefix="floatalk-example-")
    page = build_ui(queue, example_dir=example_dir, limits=limits)
    return gr.mount_gradio_app(
        app,
        page,
        path=path,
        server_name="127.0.0.1",
        footer_links=["gradio", "settings"],
        run_history=False,
        allowed_paths=[str(Path(example_dir).resolve())],
        max_file_size=limits.max_upload_bytes,
    )
