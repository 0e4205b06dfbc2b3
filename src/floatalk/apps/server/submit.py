"""POST /v1/jobs: a job submitted as a multipart upload (the files `image` and `audio`, an optional
`pose_video` and the `options` JSON), checked as it streams in and queued once every check
passed. Options with `speakers` or `turns` (or voice parts `voice1` ... `voice8`) make the job a
scene (floatalk.apps.scene_uploads): a group photo with a voice per face, from one mixed `audio`
and its turns or from a voice part per speaker. An answer given before the body was read to its
end closes the connection, so the client's upload is cut off instead of being read (and thrown
away) by the server. A body cut short (`slow_uploads.BodyCutShortError`: too slow, or its client
gone) leaves the handler by that error, after the upload's files were deleted.
"""

import json
import math
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from floatalk.apps.jobs import JobOptions, parse_options
from floatalk.apps.queue import JobRecord, QueueFullError, StorageFullError, is_disk_full
from floatalk.apps.scene_jobs import MAX_VOICES, VOICE_PARTS, is_scene
from floatalk.apps.scene_uploads import check_scene_uploads, read_scene
from floatalk.apps.server.answers import error, job_json, queue_full, storage_full
from floatalk.apps.server.multipart import Upload, boundary, too_large
from floatalk.apps.server.schemas import Job, error_responses
from floatalk.apps.server.state import API_PREFIX, ServerState, State
from floatalk.apps.uploads import UploadError, check_uploads
from floatalk.errors import UserInputError, one_line
from floatalk.scene import SPEAKER_OPTIONS

__all__ = ["options_json", "router"]

router = APIRouter(prefix=API_PREFIX)

_SCENE_OPTIONS = (
    "'speakers', a list of objects, each a 'face' (a number from the left, counted as the 'face' option counts, "
    "or [x, y, w, h] in the photo's pixels), its 'audio' (the name of its voice part, 'voice1' to "
    f"'voice{MAX_VOICES}'; left out with a mixed 'audio') and any of its own {', '.join(SPEAKER_OPTIONS)}; "
    "'turns', who speaks when in the mixed 'audio' (a list of {start, end, face}, seconds); 'others', "
    "'still' or 'idle' (what the faces nobody names do). A scene is "
    '{"speakers": [{"face": 1, "audio": "voice1"}, {"face": 2, "audio": "voice2", "emotion": "happy"}]} with '
    'the parts voice1 and voice2, or {"turns": [{"start": 0, "end": 2.5, "face": 1}, {"start": 2.5, "end": 5, '
    '"face": 2}]} with a mixed audio.'
)

# The body of POST /v1/jobs as OpenAPI describes it (the endpoint parses the stream itself).
_UPLOAD_SCHEMA = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "the portrait (or group) photo"},
                    "audio": {
                        "type": "string",
                        "format": "binary",
                        "description": "the speech recording (required, except for a scene with a voice part per "
                        "speaker; a scene's mixed recording, divided by its 'turns')",
                    },
                    "options": {
                        "type": "string",
                        "description": 'a JSON object of generate options, e.g. {"emotion": "happy", "seed": 3}; '
                        "with a scene's keys too: " + _SCENE_OPTIONS,
                    },
                    "pose_video": {
                        "type": "string",
                        "format": "binary",
                        "description": "optional: a video whose head motion the face follows (generate's --pose-video; "
                        'with {"blink_from_video": true} its blinks too); not for a scene',
                    },
                    **{
                        part: {
                            "type": "string",
                            "format": "binary",
                            "description": f"a scene: the recording of the speaker whose 'audio' is '{part}'",
                        }
                        for part in VOICE_PARTS
                    },
                },
            }
        }
    },
}
_CUT = {"Connection": "close"}
_NO_ROOM = "The server's disk filled up while the upload arrived; try again later."


MAX_OPTIONS_DEPTH = 8
"""How deep the options JSON may nest (a timeline's segment values sit at depth 4)."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")
    return value


def _depth(value: object) -> int:
    """How deep a parsed JSON value nests (a scalar is 0), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _checked(options: dict[str, Any], pose_video: bool) -> JobOptions:
    """A job of one face's options read once (`parse_options`); 400 in one sentence for what it refuses."""
    try:
        return parse_options(options, pose_video=pose_video)
    except UserInputError as exc:
        raise UploadError(400, one_line(exc)) from None


def options_json(raw: bytes) -> dict[str, Any]:
    """The options part as the JSON object it holds (empty when the part is), not yet checked; 400
    in one sentence when it is not JSON (NaN and Infinity included), nests deeper than
    MAX_OPTIONS_DEPTH or is not an object."""
    if not raw.strip():
        return {}
    too_deep = UploadError(400, f"The options part nests deeper than {MAX_OPTIONS_DEPTH} levels.")
    try:
        options = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise UploadError(400, f"The options part is not valid JSON ({exc}).") from None
    except RecursionError:
        raise too_deep from None
    if _depth(options) > MAX_OPTIONS_DEPTH:
        raise too_deep
    if not isinstance(options, dict):
        raise UploadError(400, "The options part must be a JSON object of option names and values.")
    return options


def _refusal(request: Request, state: ServerState) -> JSONResponse | None:
    """The answer to a submission refused on its headers alone, before its body is read (None: read
    it): 415 for a body of another kind, 413 for one declared over the size limit, 503 while the
    queue is full, 507 while the disk is short of space or has no room for the declared body."""
    try:
        boundary(request.headers.get("content-type", ""))
    except UploadError as exc:
        return error(exc.status, str(exc), _CUT)
    limits, queue = state.limits, state.queue
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else 0
    if size > limits.max_upload_bytes:
        return error(413, too_large(limits), _CUT)
    if queue.counts()["queued"] >= queue.max_queued:
        return queue_full(QueueFullError("The queue is full; try again later.", queue.retry_after()), _CUT)
    short = queue.space_short()
    if short is None and size > queue.free_bytes() - queue.min_free_bytes:
        short = "The server's disk has no room for an upload this large now; try again later."
    return storage_full(short, _CUT) if short else None


async def _queue(state: ServerState, upload: Upload) -> JobRecord:
    """Check and queue the job of an upload read whole: a scene (its options name speakers or turns,
    or voice parts were sent) or a job of one face."""
    upload.finish()
    voices = upload.voices()
    if not voices:
        upload.require("audio")  # only a scene with a voice part per speaker does without it
    mapping = options_json(bytes(upload.options))
    if is_scene(mapping) or voices:
        return await _queue_scene(state, upload, mapping)
    return await _queue_single(state, upload, mapping)


async def _queue_single(state: ServerState, upload: Upload, mapping: dict[str, Any]) -> JobRecord:
    """Check and queue a job of one face: its photo, its recording and an optional pose video."""
    options = _checked(mapping, pose_video="pose_video" in upload.files)
    files = upload.files
    checks = partial(check_uploads, files["image"], files["audio"], state.limits, options, files.get("pose_video"))
    named = upload.name_files(await run_in_threadpool(checks))
    submit_job = partial(
        state.queue.submit, named["image"], named["audio"], options, pose_video=named.get("pose_video")
    )
    return await run_in_threadpool(submit_job)


async def _queue_scene(state: ServerState, upload: Upload, mapping: dict[str, Any]) -> JobRecord:
    """Check and queue a scene: its photo and its mixed recording or its voice parts."""
    files, voices = upload.files, upload.voices()
    audio = files.get("audio")
    try:
        job, scene = read_scene(mapping, audio, voices, pose_video="pose_video" in files)
    except UserInputError as exc:
        raise UploadError(400, one_line(exc)) from None
    checks = partial(check_scene_uploads, files["image"], audio, voices, state.limits, job, scene)
    named = upload.name_files(await run_in_threadpool(checks))
    scene = scene.with_recordings({voices[part]: named[part] for part in voices})
    submit_job = partial(state.queue.submit, named["image"], named.get("audio"), job, scene=scene)
    return await run_in_threadpool(submit_job)


@router.post(
    "/jobs",
    status_code=202,
    summary="Submit a job",
    description="multipart/form-data with the files `image` and `audio` and an optional `options` part: a "
    'JSON object of `floatalk generate` options by flag name without dashes, e.g. {"emotion": "happy", '
    '"seed": 3}, and an optional video `pose_video` whose head motion the face follows. A scene (several '
    "faces of a group photo, a voice per face) puts `speakers`, `turns` and `others` in the options (docs/SCENES.md) "
    "and sends either one mixed `audio` divided by its `turns` or, instead of `audio`, a file part per speaker, "
    f"`voice1` to `voice{MAX_VOICES}`, each named by its speaker's `audio`. Answers 202 with the "
    "job; 400 in one sentence for any input that cannot work (checked before the job is queued); 413 over the "
    "size limit (every part counted together); 503 with Retry-After when the queue is full or too many uploads "
    "arrive at once; 507 with Retry-After while the disk is short of space.",
    openapi_extra={"requestBody": _UPLOAD_SCHEMA},
    response_model=Job,
    responses={
        202: {
            "description": "the job, queued",
            "headers": {"Location": {"description": "the job's address", "schema": {"type": "string"}}},
        },
        **error_responses(400, 408, 413, 415, 503, 507),
    },
)
async def submit(request: Request, state: State) -> JSONResponse:
    """Stream the upload in, check its parts (`floatalk.apps.uploads.check_uploads`, a scene's by
    `floatalk.apps.scene_uploads`) and queue the job."""
    refused = _refusal(request, state)
    if refused is not None:
        return refused
    parts = boundary(request.headers["content-type"])
    upload = Upload(state.incoming, state.limits)
    read_all = False
    try:
        await upload.receive(parts, request.stream())
        read_all = True
        record = await _queue(state, upload)
    except UploadError as exc:
        return error(exc.status, str(exc), None if read_all else _CUT)
    except QueueFullError as exc:
        return queue_full(exc)
    except StorageFullError as exc:
        return storage_full(str(exc), None if read_all else _CUT)
    except UserInputError as exc:
        return error(400, one_line(exc))
    except Exception as exc:  # python-multipart's parse errors, a full disk and the like
        if is_disk_full(exc):
            return storage_full(_NO_ROOM, None if read_all else _CUT)
        if type(exc).__module__.startswith("python_multipart"):
            return error(400, "The multipart body is malformed.", None if read_all else _CUT)
        raise
    finally:
        upload.discard()
    return JSONResponse(job_json(record), status_code=202, headers={"Location": f"{API_PREFIX}/jobs/{record.id}"})
