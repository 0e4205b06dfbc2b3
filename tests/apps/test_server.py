"""`floatalk serve` over real HTTP on 127.0.0.1: a real server subprocess on a free port, a tmp
data folder, httpx with real multipart bodies."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from floatalk.apps.examples import EXAMPLE_OPTIONS, write_example
from floatalk.io.video import VideoWriter

# a `floatalk serve` subprocess per module: the full suite (CI) runs these, the fast tier does not
pytestmark = pytest.mark.slow

DEADLINE_S = 120.0
TOKEN = "s3cret-token"
LIMIT_MB = 1


class Server:
    """A `floatalk serve` subprocess on 127.0.0.1 and a client for it."""

    def __init__(self, data_dir: Path, *flags: str, token: str | None = None) -> None:
        self.data_dir = data_dir
        self.flags = flags
        self.token = token
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    def start(self) -> Server:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        command = [sys.executable, "-m", "floatalk.cli.main", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--log-level", "warning", *self.flags]
        if self.token:
            command += ["--token", self.token]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert self.proc.poll() is None, f"the server exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(self.url("/v1/health"), timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /v1/health"
            time.sleep(0.2)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url(""), headers=headers, timeout=60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


def submit(client: httpx.Client, image: Path, audio: Path, options: dict | None = None) -> httpx.Response:
    files = {"image": (image.name, image.read_bytes(), "image/png"), "audio": (audio.name, audio.read_bytes())}
    data = {"options": json.dumps(options)} if options is not None else None
    return client.post("/v1/jobs", files=files, data=data)


def follow(client: httpx.Client, job_id: str, until=None) -> list[dict]:
    """The job's server-sent events until `until(record)` (default: a final state)."""
    until = until or (lambda r: r["state"] in ("done", "failed", "cancelled"))
    records: list[dict] = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=DEADLINE_S) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                records.append(json.loads(line[6:]))
                if until(records[-1]):
                    return records
    return records


def video_facts(data: bytes) -> tuple[str, str, int]:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0].codec_context.name
        audio = container.streams.audio[0].codec_context.name
        frames = sum(1 for _ in container.decode(video=0))
    return video, audio, frames


def stored(data_dir: Path) -> list[str]:
    """Every file the server keeps for jobs and uploads (not the database itself, nor the page's
    example, which the server writes in the background as it starts)."""
    return sorted(
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file()
        and "queue.sqlite3" not in p.name
        and p.name != ".workers.lock"
        and p.relative_to(data_dir).parts[0] != "example"
    )


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    example = write_example(folder / "example", seconds=2.0)
    speech, rate = sf.read(example.audio)
    sf.write(folder / "long.wav", np.tile(speech, 15), rate)  # 30 s
    sf.write(folder / "six.wav", np.tile(speech, 3), rate)  # 6 s
    blank = folder / "blank.png"
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(blank)
    big = folder / "big.png"
    Image.new("RGB", (1100, 1000)).save(big)  # 1.1 megapixels, a small file
    mover = folder / "mover.mp4"  # a pose video: the example's portrait sliding right and back
    with VideoWriter(mover, fps=25) as w:
        frame = np.asarray(Image.open(example.image).convert("RGB"))
        for dx in [*range(0, 12, 2), *range(12, 0, -2)]:
            w.write(np.roll(frame, dx, axis=1))
    too_long = folder / "silence.wav"
    sf.write(too_long, np.zeros(16000 * 6, np.float32), 16000)
    return {
        "image": example.image,
        "audio": example.audio,
        "long_audio": folder / "long.wav",
        "six_s_audio": folder / "six.wav",
        "blank": blank,
        "big": big,
        "too_long": too_long,
        "pose_video": mover,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """A server with a token and small limits: 1 MB bodies, 5 s recordings, 1 megapixel photos."""
    flags = ("--max-upload-mb", str(LIMIT_MB), "--max-audio-seconds", "5", "--max-image-pixels", "1000000")
    srv = Server(tmp_path_factory.mktemp("serve") / "data", *flags, token=TOKEN).start()
    yield srv
    srv.stop()


def test_listens_on_loopback_only_and_wants_the_token(server: Server) -> None:
    assert listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1
    health = httpx.get(server.url("/v1/health")).json()
    assert health["status"] in ("ok", "loading") and health["auth"] is True
    for method, path in [
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/x"),
        ("DELETE", "/v1/jobs/x"),
        ("GET", "/openapi.json"),
    ]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = httpx.request(method, server.url(path), headers=headers)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.json()["error"].startswith("This server needs the header")
    answer = httpx.post(server.url("/v1/jobs"), files={"image": ("a.png", b"x")})
    assert answer.status_code == 401
    with server.client() as client:
        spec = client.get("/openapi.json").json()
        assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/jobs/{job_id}/video"} <= set(
            spec["paths"]
        )
        body = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert body["required"] == ["image"]  # a scene with a voice part per speaker needs no 'audio'
        assert {"image", "audio", "options", "pose_video", "voice1", "voice8"} <= set(body["properties"])
        assert client.get("/docs").status_code == 200
        assert client.get("/v1/jobs/nope").status_code == 404


def test_the_web_page_is_served_beside_the_api_behind_the_token(server: Server) -> None:
    # a browser is challenged for the token as a Basic password (any user name), API clients keep Bearer
    bare = httpx.get(server.url("/ui/"))
    assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(server.url("/ui/"), auth=("me", "wrong")).status_code == 401
    page = httpx.get(server.url("/ui/"), auth=("me", TOKEN))
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert httpx.get(server.url("/v1/jobs"), auth=("anyone", TOKEN)).status_code == 200
    front = httpx.get(server.url("/"), auth=("me", TOKEN))
    assert front.status_code == 307 and front.headers["location"] == "/ui/"
    assert httpx.get(server.url("/ui/"), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # the interactive docs likewise, and the description they load with the same credentials
    docs = httpx.get(server.url("/docs"))
    assert docs.status_code == 401 and docs.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(server.url("/docs"), auth=("me", TOKEN)).status_code == 200
    assert "/v1/jobs" in httpx.get(server.url("/openapi.json"), auth=("me", TOKEN)).json()["paths"]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--host", "0.0.0.0"], "needs --token"),
        (["--host", "example.org", "--token", "t"], "--host must be an IP address"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--max-upload-mb", "0"], "limits must be positive"),
        (["--checkpoint", "/nonexistent/model"], "/nonexistent/model"),
    ],
)
def test_serve_mistakes_exit_2_with_one_sentence(tmp_path, capsys, flags: list[str], words: str) -> None:
    from floatalk.cli.main import main

    assert main(["serve", "--data-dir", str(tmp_path / "data"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_a_port_in_use_is_one_sentence_and_leaves_nothing(tmp_path, capsys, command: str) -> None:
    import socket

    from floatalk.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([command, "--port", str(port), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"Cannot listen on 127.0.0.1:{port}" in err and "--port" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body written by hand (to send names httpx would not)."""
    boundary = "floatalkTestBoundary"
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'.encode()
        if filename is not None:
            disposition += b'; filename="' + filename.encode("utf-8", "surrogateescape") + b'"'
        body += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + content + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def bomb_png(side: int = 50_000) -> bytes:
    """A PNG header claiming side x side pixels (2.5 gigapixels) with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


BAD_REQUESTS = {
    "missing audio": (400, "lacks the file part 'audio'", lambda f: [("image", "a.png", f["image"].read_bytes())]),
    "missing image": (400, "lacks the file part 'image'", lambda f: [("audio", "a.wav", f["audio"].read_bytes())]),
    "image not an image": (
        400,
        "not an image",
        lambda f: [("image", "a.png", f["audio"].read_bytes()), ("audio", "a.wav", f["audio"].read_bytes())],
    ),
    "audio not audio": (
        400,
        "not a sound recording",
        lambda f: [("image", "a.png", f["image"].read_bytes()), ("audio", "a.wav", f["image"].read_bytes())],
    ),
    "too many pixels": (
        400,
        "the limit is 1.0 megapixels",
        lambda f: [("image", "a.png", f["big"].read_bytes()), ("audio", "a.wav", f["audio"].read_bytes())],
    ),
    "decompression bomb": (
        400,
        "pixels",
        lambda f: [("image", "a.png", bomb_png()), ("audio", "a.wav", f["audio"].read_bytes())],
    ),
    "audio too long": (
        400,
        "longer than 5 s",
        lambda f: [("image", "a.png", f["image"].read_bytes()), ("audio", "a.wav", f["too_long"].read_bytes())],
    ),
    "unknown option": (
        400,
        "Unknown option 'colour'",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("options", None, b'{"colour": 1}'),
        ],
    ),
    "pose video not a video": (
        400,
        "'pose_video' upload is not a video",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("pose_video", "p.mp4", f["image"].read_bytes()),
        ],
    ),
    "blinks from a video without one": (
        400,
        "needs a pose video",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("options", None, b'{"blink_from_video": true}'),
        ],
    ),
    "pose video as a path": (
        400,
        "file paths are not accepted",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("options", None, b'{"pose_video": "/etc/hosts"}'),
        ],
    ),
    "malformed timeline": (
        400,
        "segments[0].emotion",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("options", None, b'{"timeline": {"segments": [{"start": 0, "end": 1, "emotion": "meh"}]}}'),
        ],
    ),
    "timeline past the recording": (
        400,
        "past the end of the",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("options", None, b'{"timeline": {"segments": [{"start": 30, "end": 31, "emotion": "sad"}]}}'),
        ],
    ),
    "timeline as a path": (
        400,
        "not a file path",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("options", None, b'{"timeline": "/etc/passwd"}'),
        ],
    ),
    "options not json": (
        400,
        "not valid JSON",
        lambda f: [
            ("image", "a.png", f["image"].read_bytes()),
            ("audio", "a.wav", f["audio"].read_bytes()),
            ("options", None, b"{emotion: happy"),
        ],
    ),
    "unknown part": (400, "Unknown form field 'video'", lambda f: [("video", "a.mp4", b"x")]),
}
PATH_NAMES = ["../../x.png", "/etc/x.png", "a\x00b.png", "..\\..\\x.png", ".."]


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_one_sentence_and_leave_nothing(server: Server, files, case: str) -> None:
    status, words, parts = BAD_REQUESTS[case]
    with server.client() as client:
        before, (_, total) = stored(server.data_dir), (None, client.get("/v1/jobs").json()["total"])
        body, headers = multipart(parts(files))
        answer = client.post("/v1/jobs", content=body, headers=headers)
        assert answer.status_code == status, answer.text
        message = answer.json()["error"]
        assert words in message and "\n" not in message and str(server.data_dir) not in message
        assert stored(server.data_dir) == before and client.get("/v1/jobs").json()["total"] == total


@pytest.mark.parametrize("name", PATH_NAMES)
def test_path_like_file_names_are_refused(server: Server, files, name: str) -> None:
    with server.client() as client:
        before = stored(server.data_dir)
        body, headers = multipart([("image", name, files["image"].read_bytes()), ("audio", "a.wav", b"")])
        answer = client.post("/v1/jobs", content=body, headers=headers)
        assert answer.status_code == 400 and "plain file name" in answer.json()["error"]
        assert stored(server.data_dir) == before


def test_not_multipart_is_refused(server: Server) -> None:
    with server.client() as client:
        answer = client.post("/v1/jobs", json={"image": "x"})
        assert answer.status_code == 415 and "multipart/form-data" in answer.json()["error"]
        assert client.get("/v1/jobs", params={"limit": 0}).status_code == 400


def test_uploads_over_the_limit_are_cut_off_while_streaming(server: Server, files) -> None:
    with server.client() as client:
        before, rss = stored(server.data_dir), server.rss_kib()
        # An honest Content-Length over the limit: refused before the body is read.
        answer = client.post("/v1/jobs", files={"image": ("a.png", b"\0" * (2 * 1024 * 1024)), "audio": ("a", b"")})
        assert answer.status_code == 413 and "limit of 1 MB" in answer.json()["error"]
        # 50 MB sent chunked (no Content-Length): counted while streaming, the connection is cut.
        sent = [0]

        def body() -> Iterator[bytes]:
            yield b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
            for _ in range(800):
                sent[0] += 65536
                yield b"\0" * 65536
            yield b"\r\n--B--\r\n"

        answer = client.post("/v1/jobs", content=body(), headers={"Content-Type": "multipart/form-data; boundary=B"})
        assert answer.status_code == 413 and answer.headers["connection"] == "close"
        assert sent[0] < 20 * 1024 * 1024, f"the server read {sent[0] / 2**20:.0f} MB of a 50 MB upload"
        assert server.rss_kib() - rss < 25 * 1024
        assert stored(server.data_dir) == before


@pytest.mark.slow
def test_the_example_renders_and_a_faceless_photo_fails_alone(server: Server, files) -> None:
    with server.client() as client:
        faceless = submit(client, files["blank"], files["audio"], {})  # cropping needs a face
        assert faceless.status_code == 202, faceless.text
        job = submit(client, files["image"], files["audio"], {**EXAMPLE_OPTIONS, "emotion": "happy", "seed": 3})
        assert job.status_code == 202 and job.headers["location"] == f"/v1/jobs/{job.json()['id']}"
        job_id = job.json()["id"]

        failed = follow(client, faceless.json()["id"])[-1]
        assert failed["state"] == "failed" and failed["error"].startswith("No face found") and failed["video"] is None
        assert client.get(f"/v1/jobs/{faceless.json()['id']}/video").status_code == 409

        records = follow(client, job_id)
        assert records[-1]["state"] == "done" and records[-1]["progress"] == 1.0
        progress = [r["progress"] for r in records]
        assert progress == sorted(progress) and {"running", "done"} <= {r["state"] for r in records}
        assert client.get(f"/v1/jobs/{job_id}").json()["options"]["emotion"] == "happy"
        video = client.get(f"/v1/jobs/{job_id}/video")
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        assert video_facts(video.content) == ("h264", "aac", 50)
        listed = client.get("/v1/jobs", params={"limit": 1}).json()
        assert listed["total"] >= 2 and listed["jobs"][0]["id"] == job_id
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 409  # done: nothing to cancel
        assert httpx.get(server.url("/v1/health")).json()["status"] == "ok"


@pytest.mark.slow
def test_a_pose_video_part_gives_the_job_its_head_motion(server: Server, files) -> None:
    with server.client() as client:
        answer = client.post(
            "/v1/jobs",
            files={
                "image": ("a.png", files["image"].read_bytes()),
                "audio": ("a.wav", files["audio"].read_bytes()),
                "pose_video": ("mover.mp4", files["pose_video"].read_bytes()),
            },
            data={"options": json.dumps({**EXAMPLE_OPTIONS, "blink_from_video": True})},
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        assert answer.json()["options"]["pose_video"].startswith("pose_video.")  # a name in the job's folder
        final = follow(client, job_id)[-1]
        assert final["state"] == "done", final
        assert video_facts(client.get(f"/v1/jobs/{job_id}/video").content) == ("h264", "aac", 50)


@pytest.mark.slow
def test_a_full_queue_answers_503_and_jobs_can_be_cancelled(tmp_path, files) -> None:
    srv = Server(tmp_path / "data", "--workers", "1", "--max-queued", "2").start()
    try:
        with srv.client() as client:
            running = submit(client, files["image"], files["long_audio"], EXAMPLE_OPTIONS).json()["id"]
            follow(client, running, until=lambda r: r["stage"] == "frames")
            waiting = [submit(client, files["image"], files["audio"], EXAMPLE_OPTIONS) for _ in range(2)]
            assert [w.status_code for w in waiting] == [202, 202]
            before = stored(srv.data_dir)
            full = submit(client, files["image"], files["audio"], EXAMPLE_OPTIONS)
            assert full.status_code == 503 and int(full.headers["retry-after"]) >= 1
            assert "queue is full" in full.json()["error"] and stored(srv.data_dir) == before

            queued = client.delete(f"/v1/jobs/{waiting[1].json()['id']}")
            assert queued.status_code == 200 and queued.json()["state"] == "cancelled"
            asked = client.delete(f"/v1/jobs/{running}")
            assert asked.status_code == 202 and asked.json()["cancel_requested"] is True
            final = follow(client, running)[-1]
            assert final["state"] == "cancelled" and final["progress"] < 1.0
            assert client.get(f"/v1/jobs/{running}/video").status_code == 409
            assert not list((srv.data_dir / "jobs" / running).glob("*.mp4*"))
            assert follow(client, waiting[0].json()["id"])[-1]["state"] == "done"
    finally:
        srv.stop()


@pytest.mark.slow
def test_nothing_is_lost_when_the_server_is_killed(tmp_path, files) -> None:
    srv = Server(tmp_path / "data", "--workers", "1").start()
    try:
        with srv.client() as client:
            finished = submit(client, files["image"], files["audio"], EXAMPLE_OPTIONS).json()["id"]
            assert follow(client, finished)[-1]["state"] == "done"
            running = submit(client, files["image"], files["six_s_audio"], EXAMPLE_OPTIONS).json()["id"]
            queued = submit(client, files["image"], files["audio"], EXAMPLE_OPTIONS).json()["id"]
            follow(client, running, until=lambda r: r["stage"] == "frames")
        srv.kill()  # kill -9 while a job renders and another waits

        srv.start()
        with srv.client() as client:
            assert video_facts(client.get(f"/v1/jobs/{finished}/video").content)[2] == 50
            assert client.get(f"/v1/jobs/{running}/video").status_code == 409  # never a half-written file
            assert follow(client, running)[-1]["state"] == "done"
            assert follow(client, queued)[-1]["state"] == "done"
            assert video_facts(client.get(f"/v1/jobs/{queued}/video").content) == ("h264", "aac", 50)
            assert video_facts(client.get(f"/v1/jobs/{running}/video").content)[2] == 150
        assert not [p for p in srv.data_dir.rglob(".*") if p.name != ".workers.lock"]
    finally:
        srv.stop()
