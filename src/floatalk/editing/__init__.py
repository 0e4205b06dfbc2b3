"""Motion control and editing: intensities, blinks, an emotion timeline, pose from a video and
video-driven reenactment, all through a per-portrait atlas of what each motion direction does.

`plan_conditions` (floatalk.editing.plan) turns `GenerateOptions` into the sampler's per-frame
conditions and the edit applied to each window of generated motion before it is decoded
(docs/MOTION.md). This package builds on the engine (floatalk.engine) and is used by the
pipeline above it; it never imports the pipeline or the render path.
"""

from floatalk.editing.atlas import GROUPS, MotionAtlas, atlas_for, measure_atlas
from floatalk.editing.controls import BoundaryEase, EffectEditor, MotionControls, MotionEdit
from floatalk.editing.plan import plan_conditions, reference_track
from floatalk.timeline import Segment, Timeline

__all__ = [
    "GROUPS",
    "BoundaryEase",
    "EffectEditor",
    "MotionAtlas",
    "MotionControls",
    "MotionEdit",
    "Segment",
    "Timeline",
    "atlas_for",
    "measure_atlas",
    "plan_conditions",
    "reference_track",
]
