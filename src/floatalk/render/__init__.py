"""The render paths: frames from the pipeline to a finished video file.

`render_video` (floatalk.render.video) writes a generation, `reenact_video`
(floatalk.render.reenact) a reenactment and `render_scene` (floatalk.render.scene) a group photo
with a voice per face; all go through `write_video` (floatalk.render.writer) and return a
`RenderReport` or a `SceneReport` (floatalk.render.report). Heavy modules load inside the functions,
so importing this package stays cheap.
"""

from floatalk.render.reenact import reenact_video
from floatalk.render.report import RenderReport, SceneReport
from floatalk.render.scene import PreparedScene, prepare_scene, render_scene
from floatalk.render.video import emotion_source, render_video
from floatalk.render.writer import MAX_FPS, check_fps, frame_picks, write_video

__all__ = [
    "MAX_FPS",
    "PreparedScene",
    "RenderReport",
    "SceneReport",
    "check_fps",
    "emotion_source",
    "frame_picks",
    "prepare_scene",
    "reenact_video",
    "render_scene",
    "render_video",
    "write_video",
]
