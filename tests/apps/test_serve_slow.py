"""Slow clients against a real uvicorn on 127.0.0.1, with raw sockets trickling bytes: headers and
bodies that take too long get 408 and a closed connection, uploads past the limit of bodies in
flight get 503 at once, and nothing an upload wrote is left behind."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floatalk.apps.queue import JobQueue
from floatalk.apps.uploads import Limits
from support import LiveServer

# waits out real timeouts on a live server: the full suite (CI) runs these, the fast tier does not
pytestmark = pytest.mark.slow

HEADER_S, BODY_S, MAX_UPLOADS = 1.0, 2.0, 3
BOUNDARY = "slowBoundary"


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> Iterator[tuple[LiveServer, JobQueue, Path]]:
    """The API and the page with short timeouts, Gradio's uploads in a folder of the test's."""
    gradio_tmp = tmp_path_factory.mktemp("gradio")
    os.environ["GRADIO_TEMP_DIR"] = str(gradio_tmp)
    from floatalk.apps.server import create_app
    from floatalk.apps.ui import mount_ui

    folder = tmp_path_factory.mktemp("slow")
    queue = JobQueue(folder / "data")
    limits = Limits(header_timeout_s=HEADER_S, body_timeout_s=BODY_S, max_uploads=MAX_UPLOADS)
    app = create_app(queue, None, limits=limits, page_prefix="/ui")
    mount_ui(app, queue, "/ui", example_dir=folder / "example", limits=limits)
    with LiveServer(app, header_timeout_s=HEADER_S) as server:
        yield server, queue, gradio_tmp


def _connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def _upload_head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    ).encode()


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and the whole answer, read until the server closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data


def _trickle(sock: socket.socket, stop: threading.Event, every: float = 0.2) -> None:
    """Send a KiB now and then until `stop` or the server hangs up."""
    try:
        while not stop.is_set():
            sock.sendall(b"x" * 1024)
            stop.wait(every)
    except OSError:
        pass


def _leftovers(queue: JobQueue, gradio_tmp: Path) -> list[Path]:
    incoming = list((queue.data_dir / "incoming").iterdir())
    return incoming + [p for p in gradio_tmp.rglob("*") if p.is_file()]


def test_headers_trickled_past_the_timeout_get_408_and_the_connection_closes(slow) -> None:
    server, _, _ = slow
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for n in range(40):  # a header line every 0.1 s, until the server answers
            if select.select([sock], [], [], 0.1)[0]:
                break
            sock.sendall(f"X-Slow-{n}: a\r\n".encode())
        status, data = _answer(sock)  # the answer, then the connection's end
        elapsed = time.monotonic() - start
    assert status == 408 and b"did not arrive within 1 s" in data
    assert HEADER_S - 0.1 < elapsed < HEADER_S + 2.0


def test_a_quiet_connection_and_a_kept_alive_one_are_timed_too(slow) -> None:
    server, _, _ = slow
    with _connect(server) as sock:  # nothing sent at all
        start = time.monotonic()
        assert _answer(sock)[0] in (0, 408)
        assert time.monotonic() - start < HEADER_S + 2.0
    with _connect(server) as sock:  # a first request answered, the next one's headers trickled
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /v1/health HTTP/1.1\r\n")
        start = time.monotonic()
        status, _ = _answer(sock)
        assert status in (0, 408) and time.monotonic() - start < HEADER_S + 6.0  # uvicorn's keep-alive is 5 s


@pytest.mark.parametrize("path", ["/v1/jobs", "/ui/gradio_api/upload"])
def test_a_body_trickled_past_the_timeout_gets_408_and_leaves_no_file(slow, path: str) -> None:
    server, queue, gradio_tmp = slow
    stop = threading.Event()
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(_upload_head(path, 10_000_000))
        feeder = threading.Thread(target=_trickle, args=(sock, stop), daemon=True)
        feeder.start()
        status, data = _answer(sock)
        elapsed = time.monotonic() - start
        stop.set()
        feeder.join()
    assert status == 408 and b"did not arrive within 2 s" in data
    assert BODY_S - 0.1 < elapsed < BODY_S + 3.0
    time.sleep(0.5)
    assert _leftovers(queue, gradio_tmp) == []


def test_uploads_past_the_limit_in_flight_get_503_at_once_and_slots_come_back(slow) -> None:
    server, queue, gradio_tmp = slow
    stop = threading.Event()
    slow_ones = [_connect(server) for _ in range(MAX_UPLOADS)]
    feeders = []
    for sock in slow_ones:
        sock.sendall(_upload_head("/v1/jobs", 10_000_000))
        feeders.append(threading.Thread(target=_trickle, args=(sock, stop), daemon=True))
        feeders[-1].start()
    time.sleep(0.3)
    refused = []
    for _ in range(20):  # many more while the slots are held: each refused at once, before its body
        with _connect(server) as sock:
            start = time.monotonic()
            sock.sendall(_upload_head("/v1/jobs", 10_000_000))
            status, data = _answer(sock)
            refused.append((status, time.monotonic() - start, b"retry-after:" in data.lower()))
    assert all(status == 503 and seconds < 1.0 and retry for status, seconds, retry in refused), refused
    assert len(list((queue.data_dir / "incoming").iterdir())) <= MAX_UPLOADS
    for sock in slow_ones:
        assert _answer(sock)[0] == 408
        sock.close()
    stop.set()
    for feeder in feeders:
        feeder.join()
    with _connect(server) as sock:  # the slots are free again
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx"
        )
        assert _answer(sock)[0] == 415
    time.sleep(0.5)
    assert _leftovers(queue, gradio_tmp) == []


def test_many_trickling_clients_hold_no_descriptor_or_file_past_the_timeout(slow) -> None:
    server, queue, gradio_tmp = slow
    fds_before = len(os.listdir("/proc/self/fd"))
    stop = threading.Event()
    socks = [_connect(server) for _ in range(60)]
    feeders = []
    for sock in socks:
        sock.sendall(_upload_head("/v1/jobs", 10_000_000))
        feeders.append(threading.Thread(target=_trickle, args=(sock, stop, 0.5), daemon=True))
        feeders[-1].start()
    time.sleep(BODY_S + 2.0)
    statuses = sorted({_answer(sock)[0] for sock in socks})
    stop.set()
    for sock in socks:
        sock.close()
    for feeder in feeders:
        feeder.join()
    assert statuses in ([408, 503], [503], [408])
    time.sleep(0.5)
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2  # the server's side of every connection is gone
    assert _leftovers(queue, gradio_tmp) == []
