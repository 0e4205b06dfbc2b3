"""The page's Scene tab (Gradio): a group photo shown with its faces numbered, a voice row per
speaker (a recording, its face's number, its emotion) or one mixed recording with a turns table,
and the scene's video, queued into the job queue the HTTP API uses as the API would queue it
(floatalk.apps.ui.actions.submit_scene).

The tab is built inside `floatalk.apps.ui.layout.build_ui`'s Blocks by `scene_tab`; its handler is
made by `scene_handler`, a generator that yields the job's line as it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from floatalk.apps.queue import JobQueue, JobRecord, QueueFullError
from floatalk.apps.ui.actions import cancel_job, follow_job, submit_scene
from floatalk.apps.ui.convert import describe, page_words
from floatalk.apps.ui.scene_convert import PAGE_VOICES, TURN_COLUMNS, scene_from_controls
from floatalk.apps.ui.scene_preview import faces_preview
from floatalk.apps.ui.staging import publish_video
from floatalk.apps.uploads import Limits
from floatalk.config import EMOTIONS
from floatalk.errors import UserInputError
from floatalk.options import GenerateOptions

__all__ = ["scene_handler", "scene_tab"]

_HELP = (
    "Animate several faces of a group photo, each with its own voice: the speaker talks, the others "
    "listen with their mouths closed (docs/SCENES.md). Give a recording per person in the voice rows, "
    "each with the number the preview shows on its face, or one mixed recording and its turns: who "
    "speaks when."
)


def scene_handler(
    gr: Any, queue: JobQueue, limits: Limits, videos: Path
) -> Callable[..., Iterator[tuple[str, str, Any]]]:
    """The Generate-scene button's handler (`gr`: Gradio, for its errors): its arguments are the
    photo, the detector, what the other faces do, the seed, the mixed recording, the turns table,
    then (recording, face, emotion) for each of the PAGE_VOICES rows; it yields (job id, the job's
    line, the video or None) at each change of the job."""

    def generate_scene(
        image: str | None, detector: str, others: str, seed: float | None, mixed: str | None, turns: Any, *rows: Any
    ) -> Iterator[tuple[str, str, Any]]:
        voices = [tuple(rows[i : i + 3]) for i in range(0, len(rows), 3)]
        try:
            options, files = scene_from_controls(
                voices, mixed=mixed or None, turns=turns, others=others, detector=detector, seed=seed
            )
            record = submit_scene(queue, image, mixed or None, files, options, limits)
        except UserInputError as exc:
            raise gr.Error(page_words(str(exc))) from None
        except QueueFullError as exc:
            raise gr.Error(str(exc) or f"The queue is full; try again in {exc.retry_after} s.") from None
        job_id, latest = record.id, record
        while latest is not None and not latest.final:  # the job's line at each change, with its progress
            yield job_id, _line(latest), None
            latest = queue.wait(job_id, latest.updated, 1.0)
        try:
            record, video = follow_job(queue, job_id)
        except UserInputError as exc:
            reason = page_words(str(exc))
            yield job_id, f"Job {job_id}: failed: {reason}", None
            raise gr.Error(reason) from None
        yield job_id, describe(record), publish_video(video, videos, job_id) if video is not None else None

    return generate_scene


def _line(record: JobRecord) -> str:
    """The job's line while it waits or runs, with how far it got."""
    if record.state == "running" and not record.cancel_requested:
        return f"{describe(record)} {record.progress:.0%} done."
    return describe(record)


def _photo_controls(gr: Any) -> dict[str, Any]:
    """The group photo, the detector, its numbered preview and what the faces nobody names do."""
    with gr.Row():
        photo = gr.Image(label="Group photo", sources=["upload"], type="filepath", height=256, elem_id="scene_photo")
        preview = gr.Image(label="Faces found", interactive=False, height=256, elem_id="scene_faces")
    found = gr.Markdown("", elem_id="scene_found")
    with gr.Row():
        detector = gr.Dropdown(["auto", "mesh", "haar"], value="auto", label="Face detector", elem_id="scene_detector")
        others = gr.Radio(
            ["still", "idle"],
            value="still",
            label="Faces nobody names",
            info="still: as the photo shows them; idle: they move as listeners, mouth closed",
            elem_id="scene_others",
        )
        seed = gr.Number(
            value=GenerateOptions().seed,
            precision=0,
            label="Seed",
            info="the first face's; the next face takes seed + 1, and so on",
            elem_id="scene_seed",
        )
    return {"photo": photo, "preview": preview, "found": found, "detector": detector, "others": others, "seed": seed}


def _voice_rows(gr: Any) -> list[Any]:
    """PAGE_VOICES rows of (recording, face number, emotion), flat in that order."""
    components: list[Any] = []
    with gr.Accordion("A recording per person", open=True):
        for n in range(1, PAGE_VOICES + 1):
            with gr.Row():
                audio = gr.Audio(label=f"Voice {n}", sources=["upload"], type="filepath", elem_id=f"scene_voice{n}")
                face = gr.Textbox(
                    value=str(n), label="Face", info="its number, or x,y,w,h", scale=0, elem_id=f"scene_face{n}"
                )
                emotion = gr.Dropdown(
                    ["auto", *EMOTIONS], value="auto", label="Emotion", scale=0, elem_id=f"scene_emotion{n}"
                )
            components += [audio, face, emotion]
    return components


def _mixed_controls(gr: Any) -> dict[str, Any]:
    """One mixed recording and its turns table (`TURN_COLUMNS`)."""
    with gr.Accordion("Or one mixed recording and its turns", open=False):
        mixed = gr.Audio(label="Mixed recording", sources=["upload"], type="filepath", elem_id="scene_mixed")
        turns = gr.Dataframe(
            value=[[""] * len(TURN_COLUMNS) for _ in range(4)],
            headers=list(TURN_COLUMNS),
            datatype="str",
            type="array",
            interactive=True,
            label="Turns: seconds, and the face that speaks",
            elem_id="scene_turns",
        )
    return {"mixed": mixed, "turns": turns}


def scene_tab(gr: Any, queue: JobQueue, limits: Limits, videos: Path) -> None:
    """The Scene tab's components and events, inside the caller's `gr.Tab`."""
    gr.Markdown(_HELP)
    with gr.Row():
        with gr.Column(scale=1):
            parts = _photo_controls(gr)
            rows = _voice_rows(gr)
            parts |= _mixed_controls(gr)
            with gr.Row():
                submit = gr.Button("Generate the scene", variant="primary", elem_id="scene_generate")
                stop = gr.Button("Cancel", variant="stop", elem_id="scene_cancel")
        with gr.Column(scale=1):
            video = gr.Video(label="Scene", interactive=False, height=420, elem_id="scene_video")
            status = gr.Markdown("", elem_id="scene_status")
            job = gr.Textbox(label="Job", interactive=False, elem_id="scene_job")
    for trigger in (parts["photo"].change, parts["detector"].change):
        trigger(
            faces_preview,
            inputs=[parts["photo"], parts["detector"]],
            outputs=[parts["preview"], parts["found"]],
            api_visibility="private",
        )
    inputs = [parts[name] for name in ("photo", "detector", "others", "seed", "mixed", "turns")] + rows
    submit.click(
        scene_handler(gr, queue, limits, videos),
        inputs=inputs,
        outputs=[job, status, video],
        api_visibility="private",
        concurrency_limit=None,
    )
    stop.click(lambda job_id: cancel_job(queue, job_id), inputs=[job], outputs=[status], api_visibility="private")
