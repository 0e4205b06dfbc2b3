"""The HTTP API of `floatalk serve` (FastAPI): jobs are submitted as multipart uploads, queued
durably (floatalk.apps.queue), followed by polling or server-sent events, and their videos
downloaded once done.

Uploads are read from the request stream in chunks and fed to python-multipart's streaming
parser, so a body over the size limit is refused (413) as soon as the limit is passed, without
reading the rest. Files are written under hidden temporary names in the data folder's
`incoming/` and moved into the job's folder only when every check passed; a refused request
leaves nothing behind. Every error answer is {"error": "<one sentence>"}.

FastAPI and python-multipart are imported when `create_app` runs, not at import time. (No
`from __future__ import annotations` here: FastAPI reads the endpoints' annotations, which name
classes imported inside `create_app`.)
"""

import asyncio
import base64
import binascii
import hmac
import json
import logging
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floatalk.apps.uploads import Limits, UploadError, check_audio, check_file_name, check_image, check_video

if TYPE_CHECKING:
    from fastapi import FastAPI

    from floatalk.apps.queue import JobQueue, Workers

__all__ = ["API_PREFIX", "create_app"]

log = logging.getLogger("floatalk.serve")

API_PREFIX = "/v1"
DOCS_PATH = "/docs"  # the interactive API docs (FastAPI's Swagger page)
_FILE_PARTS = ("image", "audio")
_OPTIONAL_FILES = ("pose_video",)
_PARTS = (*_FILE_PARTS, *_OPTIONAL_FILES, "options")
_EVENT_POLL_S = 0.2
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
_KEEPALIVE_S = 15.0


class _Upload:
    """The parts of one multipart request as they stream in: files to temporary files in
    `incoming`, the options part in memory; every byte counted against the limits."""

    def __init__(self, incoming: Path, limits: Limits) -> None:
        self.incoming = incoming
        self.limits = limits
        self.files: dict[str, Path] = {}
        self.options = bytearray()
        self.seen: set[str] = set()
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._part: str | None = None
        self._handle: Any = None

    # python-multipart callbacks
    def on_part_begin(self) -> None:
        self._headers = {}
        self._part = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition = self._headers.get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name not in _PARTS:
            raise UploadError(400, f"Unknown form field {name!r}; the fields are image, audio, options and pose_video.")
        if name in self.seen:
            raise UploadError(400, f"The form field '{name}' is given twice.")
        self.seen.add(name)
        filename = params.get(b"filename")
        if filename is not None:
            try:
                check_file_name(name, filename.decode("utf-8"))
            except UnicodeDecodeError:
                raise UploadError(400, f"The file name of part '{name}' is not valid UTF-8.") from None
        self._part = name
        if name in _FILE_PARTS or name in _OPTIONAL_FILES:
            fd, tmp = tempfile.mkstemp(prefix=f".upload-{name}-", dir=self.incoming)
            self.files[name] = Path(tmp)
            self._handle = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._handle is not None:
            self._handle.write(data[start:end])
        elif self._part == "options":
            self.options += data[start:end]
            if len(self.options) > self.limits.max_options_bytes:
                raise UploadError(413, f"The options are over {self.limits.max_options_bytes // 1024} KiB.")

    def on_part_end(self) -> None:
        self.close_file()

    def close_file(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def callbacks(self) -> dict[str, Any]:
        names = ("part_begin", "header_field", "header_value", "header_end", "headers_finished", "part_data")
        return {f"on_{n}": getattr(self, f"on_{n}") for n in (*names, "part_end")}

    def discard(self) -> None:
        """Delete every file this request wrote."""
        self.close_file()
        for path in self.files.values():
            path.unlink(missing_ok=True)


def _boundary(content_type: str) -> bytes:
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(415, "Send the job as multipart/form-data with the parts image, audio and options.")
    return params[b"boundary"]


def _options(raw: bytes, pose_video: bool = False) -> dict:
    from floatalk.apps.jobs import check_client_options
    from floatalk.errors import UserInputError

    if not raw.strip():
        return {}
    try:
        options = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UploadError(400, f"The options part is not valid JSON ({exc}).") from None
    if not isinstance(options, dict):
        raise UploadError(400, "The options part must be a JSON object of option names and values.")
    try:
        check_client_options(options, pose_video=pose_video)
    except UserInputError as exc:
        raise UploadError(400, " ".join(str(exc).split())) from None
    return options


def _is_final(state: str) -> bool:
    from floatalk.apps.queue import FINAL_STATES

    return state in FINAL_STATES


def create_app(
    queue: "JobQueue",
    workers: "Workers | None" = None,
    *,
    limits: Limits | None = None,
    token: str | None = None,
    page_prefix: str | None = None,
) -> "FastAPI":
    """The API over `queue` (whose jobs `workers` run); with `token`, every endpoint except
    /v1/health wants `Authorization: Bearer <token>`. page_prefix: where the web page will be
    mounted (`floatalk.apps.ui.mount_ui`): with a token, a browser there is asked for it (HTTP
    Basic, the token as password), and / leads to the page."""
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
    from python_multipart.multipart import MultipartParser
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    from floatalk import __version__
    from floatalk.apps.queue import QueueFullError
    from floatalk.errors import UserInputError

    limits = limits or Limits()
    incoming = queue.data_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    for stale in incoming.iterdir():  # uploads cut short by a crash
        if stale.is_file():
            stale.unlink(missing_ok=True)

    app = FastAPI(
        docs_url=DOCS_PATH,
        title="floatalk",
        version=__version__,
        description="Talking-portrait videos from one photo and a speech recording, as queued jobs.",
    )

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "The request could not be served."
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is no endpoint {request.url.path}."
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        return error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        return error(400, f"Parameter '{where}': {first.get('msg', 'invalid value')}.")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, f"Internal error ({type(exc).__name__}); the server keeps running.")

    if token:
        app.add_middleware(_TokenGate, token=token, open_paths=(f"{API_PREFIX}/health",), page_prefix=page_prefix)

    def full(exc: QueueFullError, headers: dict[str, str] | None = None) -> JSONResponse:
        return error(503, str(exc), {"Retry-After": str(exc.retry_after), **(headers or {})})

    def job_json(record) -> dict:
        body = record.to_json()
        body["video"] = f"{API_PREFIX}/jobs/{record.id}/video" if record.state == "done" else None
        return body

    def known(job_id: str):
        record = queue.get(job_id)
        if record is None:
            raise StarletteHTTPException(404, f"There is no job {job_id!r}.")
        return record

    if page_prefix is not None:
        from fastapi.responses import RedirectResponse

        @app.get("/", include_in_schema=False)
        async def front() -> RedirectResponse:
            return RedirectResponse(page_prefix.rstrip("/") + "/")

    @app.get(f"{API_PREFIX}/health", summary="Whether the server is up, and how busy")
    async def health() -> JSONResponse:
        counts = queue.counts()
        status, code = "ok", 200
        body: dict[str, Any] = {}
        if workers is not None:
            if workers.load_error:
                status, code, body["error"] = "error", 503, workers.load_error
            elif not workers.ready.is_set():
                status = "loading"
            body["workers"] = workers.count
        body.update(
            status=status,
            version=__version__,
            queued=counts["queued"],
            running=counts["running"],
            max_queued=queue.max_queued,
            auth=bool(token),
        )
        return JSONResponse(body, status_code=code)

    @app.post(
        f"{API_PREFIX}/jobs",
        status_code=202,
        summary="Submit a job",
        description="multipart/form-data with the files `image` and `audio` and an optional `options` part: a "
        'JSON object of `floatalk generate` options by flag name without dashes, e.g. {"emotion": "happy", '
        '"seed": 3}, and an optional video `pose_video` whose head motion the face follows. Answers 202 with the '
        "job; 413 over the size limit; 503 with Retry-After when the queue is full.",
        openapi_extra={"requestBody": _UPLOAD_SCHEMA},
    )
    async def submit(request: Request) -> JSONResponse:
        # An answer given before the body was read to its end closes the connection, so the
        # client's upload is cut off instead of being read (and thrown away) by the server.
        cut = {"Connection": "close"}
        try:
            boundary = _boundary(request.headers.get("content-type", ""))
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limits.max_upload_bytes:
                raise UploadError(413, _too_large(limits))
        except UploadError as exc:
            return error(exc.status, str(exc), cut)
        if queue.counts()["queued"] >= queue.max_queued:
            return full(QueueFullError("The queue is full; try again later.", queue.retry_after()), cut)

        upload = _Upload(incoming, limits)
        read_all = False
        try:
            parser = MultipartParser(boundary, upload.callbacks())
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > limits.max_upload_bytes:
                    raise UploadError(413, _too_large(limits))
                if chunk:
                    await run_in_threadpool(parser.write, chunk)
            read_all = True
            parser.finalize()
            upload.close_file()
            missing = [p for p in _FILE_PARTS if p not in upload.files]
            if missing:
                raise UploadError(400, f"The request lacks the file part '{missing[0]}' (send image and audio).")
            options = _options(bytes(upload.options), pose_video="pose_video" in upload.files)
            image_suffix = await run_in_threadpool(check_image, upload.files["image"], limits)
            # an inline timeline must start within the recording (a path is refused by the options check)
            timeline = options.get("timeline") if isinstance(options.get("timeline"), dict) else None
            audio_suffix = await run_in_threadpool(check_audio, upload.files["audio"], limits, timeline)
            suffixes = [("image", image_suffix), ("audio", audio_suffix)]
            if "pose_video" in upload.files:
                suffixes.append(("pose_video", await run_in_threadpool(check_video, upload.files["pose_video"])))
            named = {}
            for part, suffix in suffixes:
                named[part] = upload.files[part].with_name(upload.files[part].name + suffix)
                os.replace(upload.files[part], named[part])
                upload.files[part] = named[part]
            record = await run_in_threadpool(
                partial(queue.submit, pose_video=named.get("pose_video")), named["image"], named["audio"], options
            )
        except UploadError as exc:
            return error(exc.status, str(exc), None if read_all else cut)
        except QueueFullError as exc:
            return full(exc)
        except UserInputError as exc:
            return error(400, " ".join(str(exc).split()))
        except ClientDisconnect:  # the client went away mid-upload: nobody reads the answer
            return error(400, "The upload was cut short by the client.", cut)
        except Exception as exc:  # python-multipart's parse errors and the like
            if type(exc).__module__.startswith("python_multipart"):
                return error(400, "The multipart body is malformed.", None if read_all else cut)
            raise
        finally:
            upload.discard()
        return JSONResponse(job_json(record), status_code=202, headers={"Location": f"{API_PREFIX}/jobs/{record.id}"})

    @app.get(f"{API_PREFIX}/jobs", summary="List jobs, newest first")
    async def list_jobs(offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=100)) -> dict:
        records, total = queue.list(offset, limit)
        return {"jobs": [job_json(r) for r in records], "total": total, "offset": offset, "limit": limit}

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}", summary="A job's state, stage, progress and error")
    async def get_job(job_id: str) -> dict:
        return job_json(known(job_id))

    @app.get(
        f"{API_PREFIX}/jobs/{{job_id}}/events",
        summary="Server-sent events: the job's record at every change, ending at a final state",
    )
    async def events(job_id: str, request: Request) -> StreamingResponse:
        record = known(job_id)

        async def stream():
            nonlocal record
            yield _event(job_json(record))
            quiet = 0.0
            while not _is_final(record.state):
                await asyncio.sleep(_EVENT_POLL_S)
                if await request.is_disconnected():
                    return
                latest = queue.get(job_id)
                if latest is None:
                    return
                if latest.updated > record.updated:
                    record, quiet = latest, 0.0
                    yield _event(job_json(record))
                else:
                    quiet += _EVENT_POLL_S
                    if quiet >= _KEEPALIVE_S:
                        quiet = 0.0
                        yield ": keep-alive\n\n"

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}/video", summary="The finished video (mp4)")
    async def video(job_id: str) -> FileResponse:
        record = known(job_id)
        path = queue.video(job_id)
        if path is None:
            raise StarletteHTTPException(409, f"Job {job_id} is {record.state}; only a done job has a video.")
        return FileResponse(path, media_type="video/mp4", filename=f"floatalk-{job_id}.mp4")

    @app.delete(
        f"{API_PREFIX}/jobs/{{job_id}}",
        summary="Cancel a job",
        description="A queued job is cancelled at once (200); a running one stops within one window of motion "
        "(202, follow its events); a done or failed job cannot be cancelled (409).",
    )
    async def cancel(job_id: str) -> JSONResponse:
        record = known(job_id)
        if record.state in ("done", "failed"):
            raise StarletteHTTPException(409, f"Job {job_id} is already {record.state}.")
        record = await run_in_threadpool(queue.cancel, job_id)
        return JSONResponse(job_json(record), status_code=200 if record.state == "cancelled" else 202)

    return app


class _TokenGate:
    """ASGI middleware: a request without the token gets 401, except on `open_paths`. The token
    comes as `Authorization: Bearer <token>` (API clients) or as the password of HTTP Basic
    authentication, any user name (a browser on the web page or the interactive docs, which asks
    for it once: requests under `page_prefix` and DOCS_PATH are answered with a Basic challenge).
    Plain ASGI, so request bodies and event streams pass through untouched."""

    def __init__(self, app: Any, token: str, open_paths: tuple[str, ...] = (), page_prefix: str | None = None) -> None:
        self.app = app
        self.token = token.encode()
        self.open_paths = open_paths
        self.page_prefix = page_prefix

    def _allowed(self, header: bytes) -> bool:
        scheme, _, value = header.partition(b" ")
        value = value.strip()
        if scheme.lower() == b"bearer":
            return hmac.compare_digest(value, self.token)
        if scheme.lower() == b"basic":
            try:
                password = base64.b64decode(value, validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(password, self.token)
        return False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"] not in self.open_paths:
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not self._allowed(given):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                from fastapi.responses import JSONResponse

                path = scope["path"]
                page = path == DOCS_PATH or path.startswith(DOCS_PATH + "/")  # the interactive docs
                page |= self.page_prefix is not None and (path == "/" or path.startswith(self.page_prefix))
                challenge = 'Basic realm="floatalk", charset="UTF-8"' if page else "Bearer"
                message = (
                    "This page needs the server's token as the password (any user name)."
                    if page
                    else "This server needs the header 'Authorization: Bearer <token>'."
                )
                response = JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": challenge})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _too_large(limits: Limits) -> str:
    return f"The upload is over the limit of {limits.max_upload_bytes / 1024 / 1024:g} MB."


def _event(body: dict) -> str:
    return f"id: {body['updated']}\ndata: {json.dumps(body)}\n\n"
