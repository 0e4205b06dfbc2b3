"""The web page's layout (Gradio): on the Portrait tab the files and the motion controls on the
left, the video and the job's status on the right, wired to the page's actions on the job queue
the HTTP API uses (floatalk.apps.ui.actions); the Scene tab (a group photo, a voice per face) is
floatalk.apps.ui.scene_tab.

Gradio is imported only by `build_ui` and `mount_ui`, after analytics are switched off
(`GRADIO_ANALYTICS_ENABLED=False`); the components are made by one function per part of the page.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.apps.examples import EXAMPLE_OPTIONS
from floatalk.apps.live.page import relative_link
from floatalk.apps.queue import JobQueue, JobRecord, QueueFullError
from floatalk.apps.ui.actions import cancel_job, follow_job, submit_files
from floatalk.apps.ui.convert import LABELS, TIMELINE_COLUMNS, describe, options_from_controls, page_words
from floatalk.apps.ui.scene_tab import scene_tab
from floatalk.apps.ui.staging import example_files, publish_video
from floatalk.apps.uploads import Limits
from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError
from floatalk.options import MAX_MOTION_SCALE, GenerateOptions

if TYPE_CHECKING:
    import gradio as gr
    from fastapi import FastAPI

__all__ = ["build_ui", "mount_ui"]

_INTRO = (
    "# floatalk: a talking portrait from one photo and a recording\n"
    "Give a portrait photo and a speech recording, choose how the face moves, and press **Generate**. "
    "Jobs wait in the same queue as the HTTP API. The bundled demo model only knows floatalk's "
    "synthetic drawn faces: press *Use the example* to see it work (real photos need the FLOAT "
    "release weights)."
)

_GENERATE_INPUTS = (
    "image",
    "audio",
    "emotion",
    "head_motion",
    "mouth_scale",
    "expression_scale",
    "blink",
    "a_cfg_scale",
    "e_cfg_scale",
    "seed",
    "crop",
    "timeline",
    "transition",
    "pose_video",
    "blink_from_video",
)
"""The components the Generate button reads, in the order of its handler's parameters."""


def _import_gradio() -> Any:
    """Gradio, with its usage analytics off (it would otherwise phone home when the app starts)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import gradio

    return gradio


def build_ui(
    queue: JobQueue,
    *,
    example_dir: str | os.PathLike,
    example_seconds: float = 4.0,
    limits: Limits | None = None,
    live_link: str | None = None,
) -> gr.Blocks:
    """The page as a Gradio Blocks whose jobs go into `queue` (shared with the API).

    example_dir: where the one-click example's portrait and speech are written (made once), and
    where finished videos are linked for the page to serve; whoever mounts the page passes this
    folder in Gradio's `allowed_paths` unless it lies in the temporary folder (`mount_ui` does).
    example_seconds: the example speech's length; limits: the API's upload limits, which the page's
    files must meet too (default `floatalk.apps.uploads.Limits()`, the API's defaults); live_link:
    the live page's address as seen from this page (a link to it under the title), or None."""
    gr = _import_gradio()
    limits = limits or Limits()
    example_dir = Path(example_dir)
    example = example_files(example_dir, example_seconds)
    defaults = GenerateOptions()
    # delete_cache: Gradio's copies of uploads and videos older than a day go, checked hourly.
    with gr.Blocks(title="floatalk", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        gr.Markdown(_INTRO)
        if live_link is not None:
            gr.Markdown(
                f"**Live:** [talk into the microphone and watch the portrait follow as you speak]({live_link})",
                elem_id="live-link",
            )
        videos = example_dir / "videos"  # finished videos, as the page serves them
        with gr.Tab("Portrait", elem_id="portrait_tab"), gr.Row():
            with gr.Column(scale=1):
                parts = _files_and_buttons(gr)
                parts |= _motion_controls(gr, defaults)
                parts |= _pose_video_controls(gr)
                parts |= _guidance_controls(gr, defaults)
                parts |= _timeline_controls(gr)
            with gr.Column(scale=1):
                parts |= _result_panel(gr)
        with gr.Tab("Scene", elem_id="scene_tab"):
            scene_tab(gr, queue, limits, videos)
        _wire(parts, _generate_handler(gr, queue, limits, videos), queue, example)
    return page


def _files_and_buttons(gr: Any) -> dict[str, Any]:
    """The photo, the recording, the example and the Generate and Cancel buttons."""
    image = gr.Image(
        label="Portrait photo",
        sources=["upload", "webcam"],
        type="filepath",
        image_mode=None,
        height=256,
        elem_id="photo",
    )
    audio = gr.Audio(label="Speech", sources=["upload", "microphone"], type="filepath", format=None, elem_id="speech")
    use_example = gr.Button(
        "Use the example (a synthetic speaker the bundled model knows; crop off)",
        size="sm",
        elem_id="example",
    )
    with gr.Row():
        submit = gr.Button("Generate", variant="primary", elem_id="generate")
        stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
    return {"image": image, "audio": audio, "use_example": use_example, "submit": submit, "stop": stop}


def _motion_controls(gr: Any, defaults: GenerateOptions) -> dict[str, Any]:
    """The emotion, the face crop and the motion's intensities and blinks."""
    slider_max = MAX_MOTION_SCALE

    def intensity(value: float, label: str, info: str) -> Any:
        """A motion intensity's slider (0 to slider_max, 1 as generated)."""
        return gr.Slider(0, slider_max, value=value, step=0.05, label=label, info=info)

    with gr.Row():
        emotion = gr.Dropdown(
            ["auto", *EMOTIONS],
            value=defaults.emotion,
            label=LABELS["emotion"],
            info="auto predicts it from the speech; a name redirects the face",
            elem_id="emotion",
        )
        crop = gr.Checkbox(
            value=defaults.crop,
            label=LABELS["crop"],
            info="off animates the whole photo (letterboxed to a square)",
            elem_id="crop",
        )
    with gr.Accordion("Motion", open=True):
        head_motion = intensity(
            defaults.head_motion, LABELS["head_motion"], "0 holds the photo's pose, 1 as generated, above 1 amplified"
        )
        mouth_scale = intensity(
            defaults.mouth_scale, LABELS["mouth_scale"], "lip motion: 0 closes the mouth, above 1 exaggerates"
        )
        expression_scale = intensity(
            defaults.expression_scale, LABELS["expression_scale"], "brows and eyes: 0 holds the photo's expression"
        )
        blink = gr.Checkbox(value=defaults.blink, label=LABELS["blink"], info="off holds the eyes' openness")
    return {
        "emotion": emotion,
        "crop": crop,
        "head_motion": head_motion,
        "mouth_scale": mouth_scale,
        "expression_scale": expression_scale,
        "blink": blink,
    }


def _pose_video_controls(gr: Any) -> dict[str, Any]:
    """The head-motion video (generate's --pose-video) and whether blinks come from it too."""
    with gr.Accordion("Head motion from a video", open=False):
        gr.Markdown(
            "The head moves as in this video (of anyone; upload one or record one with the webcam) "
            "while the lips and the expression follow the speech."
        )
        pose_video = gr.Video(
            label=LABELS["pose_video"], sources=["upload", "webcam"], height=200, elem_id="pose_video"
        )
        blink_from_video = gr.Checkbox(
            value=False,
            label=LABELS["blink_from_video"],
            info="the eyes blink when the video's do, instead of as generated",
            elem_id="blink_from_video",
        )
    return {"pose_video": pose_video, "blink_from_video": blink_from_video}


def _guidance_controls(gr: Any, defaults: GenerateOptions) -> dict[str, Any]:
    """The audio and emotion guidance scales and the seed."""
    with gr.Accordion("Guidance and seed", open=False):
        a_cfg_scale = gr.Slider(
            0,
            5,
            value=defaults.a_cfg_scale,
            step=0.1,
            label=LABELS["a_cfg_scale"],
            info="higher follows the speech more strongly",
        )
        e_cfg_scale = gr.Slider(
            0,
            5,
            value=defaults.e_cfg_scale,
            step=0.1,
            label=LABELS["e_cfg_scale"],
            info="higher exaggerates the emotion",
        )
        seed = gr.Number(value=defaults.seed, precision=0, label=LABELS["seed"], info="same seed, same video")
    return {"a_cfg_scale": a_cfg_scale, "e_cfg_scale": e_cfg_scale, "seed": seed}


def _timeline_controls(gr: Any) -> dict[str, Any]:
    """The timeline table (`TIMELINE_COLUMNS`, three empty rows) and the ramp between its segments."""
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
            label=LABELS["timeline"],
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
    return {"timeline": timeline, "transition": transition}


def _result_panel(gr: Any) -> dict[str, Any]:
    """The finished video, the job's status line and its id."""
    video = gr.Video(label="Video", interactive=False, buttons=["download"], height=420, elem_id="video")
    status = gr.Markdown("", elem_id="status")
    job = gr.Textbox(label="Job", interactive=False, elem_id="job")
    return {"video": video, "status": status, "job": job}


def _generate_handler(gr: Any, queue: JobQueue, limits: Limits, videos: Path) -> Callable[..., Iterator[Any]]:
    """The Generate button's handler: queue the job, then follow it to its video (linked into
    `videos`) or its error, with Gradio's progress bar. Its parameters are `_GENERATE_INPUTS`."""

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
        yield record.id, describe(record), publish_video(video, videos, record.id) if video is not None else None

    return generate


def _wire(
    parts: dict[str, Any], generate: Callable[..., Any], queue: JobQueue, example: Future[tuple[Path, Path]]
) -> None:
    """The buttons' events: Generate runs `generate`, the example fills in its files and the
    controls it needs, Cancel cancels the job shown."""
    parts["submit"].click(
        generate,
        inputs=[parts[name] for name in _GENERATE_INPUTS],
        outputs=[parts["job"], parts["status"], parts["video"]],
        show_progress_on=[parts["video"]],
        api_visibility="private",
        concurrency_limit=None,
    )
    parts["use_example"].click(
        lambda: (*map(str, example.result()), bool(EXAMPLE_OPTIONS.get("crop", True)), "auto"),
        outputs=[parts["image"], parts["audio"], parts["crop"], parts["emotion"]],
        api_visibility="private",
    )
    parts["stop"].click(
        lambda job_id: cancel_job(queue, job_id),
        inputs=[parts["job"]],
        outputs=[parts["status"]],
        api_visibility="private",
    )


def mount_ui(
    app: FastAPI,
    queue: JobQueue,
    path: str = "/ui",
    *,
    example_dir: str | os.PathLike | None = None,
    limits: Limits | None = None,
    live_path: str | None = None,
) -> FastAPI:
    """Mount the page on `app` at `path` (the API's FastAPI app or one of its own), sharing `queue`.

    example_dir: where the example files go (default: a new temporary folder); limits: the upload
    limits (default the API's); Gradio refuses a file over `limits.max_upload_bytes` as it arrives.
    live_path: where the app serves the live page (`floatalk.apps.live.page`), linked from this
    page; None: no link."""
    gr = _import_gradio()
    limits = limits or Limits()
    if example_dir is None:
        example_dir = tempfile.mkdtemp(prefix="floatalk-example-")
    live_link = None if live_path is None else relative_link(path, live_path) + "/"
    page = build_ui(queue, example_dir=example_dir, limits=limits, live_link=live_link)
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
