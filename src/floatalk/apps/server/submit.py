"""POST /v1/jobs: a job submitted as a multipart upload (the files `image` and `audio`, an optional
`pose_video` and the `options` JSON), checked as it streams in and queued once every check
passed. An answer given before the body was read to its end closes the connection, so the
client's upload is cut off instead of being read (and thrown away) by the server.
"""

import json
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from floatalk.apps.jobs import JobOptions, parse_options
from floatalk.apps.queue import QueueFullError
from floatalk.apps.server.answers import error, job_json, queue_full
from floatalk.apps.server.multipart import Upload, boundary, too_large
from floatalk.apps.server.state import API_PREFIX, State
from floatalk.apps.uploads import Limits, UploadError, check_uploads
from floatalk.errors import UserInputError, one_line

__all__ = ["options_part", "router"]

router = APIRouter(prefix=API_PREFIX)

# The body of POST /v1/jobs as OpenAPI describes it (the endpoint parses the stream itself).
_UPLOAD_SCHEMA = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image", "audio"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "the portrait photo"},
                    "audio": {"type": "string", "format": "binary", "description": "the speech recording"},
                    "options": {
                        "type": "string",
                        "description": 'a JSON object of generate options, e.g. {"emotion": "happy", "seed": 3}',
                    },
                    "pose_video": {
                        "type": "string",
                        "format": "binary",
                        "description": "optional: a video whose head motion the face follows (generate's --pose-video; "
                        'with {"blink_from_video": true} its blinks too)',
                    },
                },
            }
        }
    },
}
_CUT = {"Connection": "close"}


def options_part(raw: bytes, pose_video: bool = False) -> JobOptions:
    """The options part read once into checked options (none given when empty); 400 in one sentence otherwise."""
    if not raw.strip():
        return parse_options({}, pose_video=pose_video)
    try:
        options = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UploadError(400, f"The options part is not valid JSON ({exc}).") from None
    if not isinstance(options, dict):
        raise UploadError(400, "The options part must be a JSON object of option names and values.")
    try:
        return parse_options(options, pose_video=pose_video)
    except UserInputError as exc:
        raise UploadError(400, one_line(exc)) from None


def _boundary_of(request: Request, limits: Limits) -> bytes:
    """The body's multipart boundary, once the headers show the body may be read: 415 for a body
    of another kind, 413 for one declared over the size limit."""
    found = boundary(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_upload_bytes:
        raise UploadError(413, too_large(limits))
    return found


@router.post(
    "/jobs",
    status_code=202,
    summary="Submit a job",
    description="multipart/form-data with the files `image` and `audio` and an optional `options` part: a "
    'JSON object of `floatalk generate` options by flag name without dashes, e.g. {"emotion": "happy", '
    '"seed": 3}, and an optional video `pose_video` whose head motion the face follows. Answers 202 with the '
    "job; 413 over the size limit; 503 with Retry-After when the queue is full.",
    openapi_extra={"requestBody": _UPLOAD_SCHEMA},
)
async def submit(request: Request, state: State) -> JSONResponse:
    """Stream the upload in, check its parts (`floatalk.apps.uploads.check_uploads`) and queue the job."""
    try:
        parts = _boundary_of(request, state.limits)
    except UploadError as exc:
        return error(exc.status, str(exc), _CUT)
    queue = state.queue
    if queue.counts()["queued"] >= queue.max_queued:
        return queue_full(QueueFullError("The queue is full; try again later.", queue.retry_after()), _CUT)

    upload = Upload(state.incoming, state.limits)
    read_all = False
    try:
        await upload.receive(parts, request.stream())
        read_all = True
        upload.finish()
        options = options_part(bytes(upload.options), pose_video="pose_video" in upload.files)
        files = upload.files
        checks = partial(check_uploads, files["image"], files["audio"], state.limits, options, files.get("pose_video"))
        named = upload.name_files(await run_in_threadpool(checks))
        submit_job = partial(queue.submit, named["image"], named["audio"], options, pose_video=named.get("pose_video"))
        record = await run_in_threadpool(submit_job)
    except UploadError as exc:
        return error(exc.status, str(exc), None if read_all else _CUT)
    except QueueFullError as exc:
        return queue_full(exc)
    except UserInputError as exc:
        return error(400, one_line(exc))
    except ClientDisconnect:  # the client went away mid-upload: nobody reads the answer
        return error(400, "The upload was cut short by the client.", _CUT)
    except Exception as exc:  # python-multipart's parse errors and the like
        if type(exc).__module__.startswith("python_multipart"):
            return error(400, "The multipart body is malformed.", None if read_all else _CUT)
        raise
    finally:
        upload.discard()
    return JSONResponse(job_json(record), status_code=202, headers={"Location": f"{API_PREFIX}/jobs/{record.id}"})
