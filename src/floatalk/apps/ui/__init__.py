"""The web page (Gradio): a photo and a recording in, a talking video out, through the job queue
the HTTP API uses.

The page puts every job into the same `floatalk.apps.queue.JobQueue` as the API, with the same
options mapping (`floatalk.apps.jobs.parse_options` keys), then follows the job's record until
it is done and shows the video, or the job's error in one sentence. The motion controls are
generate's flags; the timeline table becomes the `{"segments": [...]}` object of docs/MOTION.md.

The parts: `convert` (the page's values as options, in plain functions without Gradio),
`staging` (the page's files), `actions` (queueing, following and cancelling a job) and
`layout` (the Gradio page, `build_ui` and `mount_ui`); the Scene tab (a group photo, a voice per
face) is `scene_tab`, with its values as a scene job in `scene_convert` and the photo's faces
numbered in `scene_preview`. Gradio is imported only when a page is
built, after analytics are switched off.
"""

from floatalk.apps.ui.actions import cancel_job, follow_job, submit_files, submit_scene
from floatalk.apps.ui.convert import TIMELINE_COLUMNS, describe, options_from_controls, page_words, timeline_from_rows
from floatalk.apps.ui.layout import build_ui, mount_ui
from floatalk.apps.ui.scene_convert import scene_from_controls
from floatalk.apps.ui.scene_preview import faces_preview
from floatalk.apps.ui.staging import stage_inputs

__all__ = [
    "TIMELINE_COLUMNS",
    "build_ui",
    "cancel_job",
    "describe",
    "faces_preview",
    "follow_job",
    "mount_ui",
    "options_from_controls",
    "page_words",
    "scene_from_controls",
    "stage_inputs",
    "submit_files",
    "submit_scene",
    "timeline_from_rows",
]
