"""A job's upload read as it streams in: the request body is fed in chunks to python-multipart's
streaming parser, so a body over the size limit is refused (413) as soon as the limit is passed,
without reading the rest. Files are written under hidden temporary names in the data folder's
`incoming/` and given their final names only once every check passed; `Upload.discard` deletes
whatever a request wrote, so a refused request leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from floatalk.apps.scene_jobs import VOICE_PARTS
from floatalk.apps.uploads import Limits, UploadError, check_file_name

__all__ = ["FILE_PARTS", "OPTIONAL_FILES", "Upload", "boundary", "too_large"]

FILE_PARTS = ("image", "audio")
OPTIONAL_FILES = ("pose_video", *VOICE_PARTS)  # a scene's speakers' own recordings: voice1 ... voice8
_PARTS = (*FILE_PARTS, *OPTIONAL_FILES, "options")


def boundary(content_type: str) -> bytes:
    """The multipart boundary of a Content-Type header; 415 for a body of another kind."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(415, "Send the job as multipart/form-data with the parts image, audio and options.")
    return params[b"boundary"]


def too_large(limits: Limits) -> str:
    """The sentence of a 413: the body is over the limit."""
    return f"The upload is over the limit of {limits.max_upload_bytes / 1024 / 1024:g} MB."


class Upload:
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
        self._parser: MultipartParser | None = None

    async def receive(self, boundary: bytes, body: AsyncIterator[bytes]) -> None:
        """Parse the request's `body` to its end (413 once it passes the size limit; a malformed
        body raises python-multipart's own errors)."""
        self._parser = MultipartParser(boundary, self._callbacks())
        received = 0
        async for chunk in body:
            received += len(chunk)
            if received > self.limits.max_upload_bytes:
                raise UploadError(413, too_large(self.limits))
            if chunk:
                await run_in_threadpool(self._parser.write, chunk)

    def finish(self) -> None:
        """End the parse of a body read whole; 400 when the image is missing (`require` asks for
        the audio, which a scene with a voice per speaker does without)."""
        if self._parser is not None:
            self._parser.finalize()
        self._close_file()
        self.require("image")

    def require(self, part: str) -> None:
        """400 when the file part `part` was not sent."""
        if part not in self.files:
            raise UploadError(400, f"The request lacks the file part '{part}' (send image and audio).")

    def voices(self) -> dict[str, Path]:
        """The scene's voice parts that were sent (part name -> file), in their numbers' order."""
        return {part: self.files[part] for part in VOICE_PARTS if part in self.files}

    def name_files(self, suffixes: dict[str, str]) -> dict[str, Path]:
        """Give the checked files their suffixes (part -> suffix, e.g. {"image": ".png"}); returns
        part -> path. They stay hidden in `incoming` until the queue moves them."""
        for part, suffix in suffixes.items():
            named = self.files[part].with_name(self.files[part].name + suffix)
            os.replace(self.files[part], named)
            self.files[part] = named
        return {part: self.files[part] for part in suffixes}

    def discard(self) -> None:
        """Delete every file this request wrote (those the queue took are gone already)."""
        try:
            self._close_file()
        except OSError:  # its last bytes found no room on the disk: the file goes anyway
            self._handle = None
        for path in self.files.values():
            path.unlink(missing_ok=True)

    # python-multipart callbacks
    def _callbacks(self) -> dict[str, Any]:
        names = ("part_begin", "header_field", "header_value", "header_end", "headers_finished", "part_data")
        return {f"on_{n}": getattr(self, f"_on_{n}") for n in (*names, "part_end")}

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._part = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name not in _PARTS:
            raise UploadError(
                400,
                f"Unknown form field {name!r}; the fields are image, audio, options, pose_video and, for a scene, "
                f"{VOICE_PARTS[0]} to {VOICE_PARTS[-1]}.",
            )
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
        if name in FILE_PARTS or name in OPTIONAL_FILES:
            fd, tmp = tempfile.mkstemp(prefix=f".upload-{name}-", dir=self.incoming)
            self.files[name] = Path(tmp)
            self._handle = os.fdopen(fd, "wb")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._handle is not None:
            self._handle.write(data[start:end])
        elif self._part == "options":
            self.options += data[start:end]
            if len(self.options) > self.limits.max_options_bytes:
                raise UploadError(413, f"The options are over {self.limits.max_options_bytes // 1024} KiB.")

    def _on_part_end(self) -> None:
        self._close_file()

    def _close_file(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
