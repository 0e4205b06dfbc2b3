"""Helpers the tests import by name (`from support import ...`): the parity data's place and
files, the release-format folder builder, a live uvicorn server, a scene's test voices, small
disks that fill up. Fixtures live in conftest.py;
these are plain functions and classes, in a module of a name no other file of tests/ takes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "data" / "parity"  # a copy of the release-parity contract (tests/data/README.md)
PARITY_FILES = (
    "schema.tsv",
    "make_release_dir.py",
    "wav2vec2_config.json",
    "emotion_config.json",
    "preprocessor_config.json",
    "expected_a.npz",
    "inputs_a/image.png",
    "inputs_a/audio.wav",
)


def require_parity() -> Path:
    """PARITY when its files are there; otherwise skip the test, or fail it when CI is set."""
    missing = [name for name in PARITY_FILES if not (PARITY / name).is_file()]
    if missing:
        message = f"parity data missing from {PARITY} ({', '.join(missing)}; see tests/data/README.md)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so this is a failure")
        pytest.skip(message)
    return PARITY


def build_release_dir(parity_dir: Path, out: Path, style: str = "release") -> Path:
    """Rebuild a release-format folder with the fill rule (tests/data/parity/make_release_dir.py)."""
    if not (out / "float.pth").is_file():
        subprocess.run(
            [sys.executable, str(parity_dir / "make_release_dir.py"), str(out), "--style", style],
            check=True,
            capture_output=True,
        )
    return out


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread of the test process: the real HTTP
    stack (sockets, uvicorn's protocol with floatalk's header timeout, the app's middleware), as
    `floatalk serve` runs it, without loading a model."""

    def __init__(self, app, header_timeout_s: float = 10.0, send_buffer: int | None = None) -> None:
        """send_buffer: the kernel's send buffer of each connection, in bytes (small: a slow link)."""
        self.app = app
        self.header_timeout_s = header_timeout_s
        self.send_buffer = send_buffer
        self.port = 0

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> LiveServer:
        import socket
        import threading
        import time

        import uvicorn

        from floatalk.apps.server import header_timeout_protocol

        self.sock = socket.socket()
        if self.send_buffer is not None:  # accepted connections inherit it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        http = header_timeout_protocol(self.header_timeout_s)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", http=http)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def tone_voice(start: float, end: float, pitch: float, seconds: float, rate: int = 16000):
    """A syllable-rate modulated tone between `start` and `end` s and silence elsewhere: (N,) float32."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * pitch * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    wave[(t < start) | (t >= end)] = 0.0
    return wave.astype(np.float32)


# -- disks that refuse writes (root mounts a small tmpfs) ------------------------------------------
def no_mount(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the disk-fault tests must run")
    pytest.skip(reason)


def mount_tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of `size` on `folder` for the duration of the test (root only)."""
    folder.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    if os.geteuid() != 0:
        no_mount("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        no_mount(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill `disk` to the last byte, then free `leave` bytes of it."""
    with open(disk / "filler", "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
        size = handle.tell()
        handle.truncate(max(0, size - leave))
    assert os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize <= leave + 4096
