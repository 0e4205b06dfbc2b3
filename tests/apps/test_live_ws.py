"""The live endpoint, /v1/live, over a real uvicorn WebSocket on 127.0.0.1 with the Python client
(floatalk.apps.live.client): one server with a tiny model for the module, one live session slot,
a token, a short idle timeout and a small send queue."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from floatalk.apps.examples import EXAMPLE_OPTIONS, write_example
from floatalk.apps.live.client import stream
from floatalk.apps.live.sessions import LiveLimits, LivePool
from floatalk.apps.queue import JobQueue
from floatalk.io.audio import load_audio
from support import LiveServer

TOKEN = "live-token"
IDLE_S = 4.0
SEND_FRAMES = 8
MAX_CHUNK_S = 0.5


@dataclass
class Live:
    server: LiveServer
    pool: LivePool
    queue: JobQueue
    image: Path
    wave: np.ndarray  # 1 s at 16 kHz

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/v1/live"

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Until no session holds a slot (the last one's worker is free)."""
        deadline = time.monotonic() + timeout_s
        while self.pool.active:
            assert time.monotonic() < deadline, "the live session's slot was never given back"
            time.sleep(0.02)

    def start(self, **fields) -> dict:
        message = {"type": "start", "image": base64.b64encode(self.image.read_bytes()).decode(), "options": {}}
        message["options"] = dict(EXAMPLE_OPTIONS)
        message.update(sample_rate=16000, format="s16le")
        message.update(fields)
        return message


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_bundle_dir: Path) -> Iterator[Live]:
    from floatalk.apps.server import create_app
    from floatalk.pipeline import FloatPipeline

    folder = tmp_path_factory.mktemp("live")
    example = write_example(folder / "example", seconds=4.0, size=64)
    queue = JobQueue(folder / "data")
    # min_speed 0: this shared machine's speed varies too much to hold the tiny model to real time
    # (tests/apps/test_live_sessions.py checks the refusal of a model too slow).
    # JPEGs at quality 100 are large (about 5 KB), so few fill the socket's buffers.
    limits = LiveLimits(1, IDLE_S, send_frames=SEND_FRAMES, max_chunk_s=MAX_CHUNK_S, jpeg_quality=100, min_speed=0.0)
    pool = LivePool(limits=limits, loader=lambda: FloatPipeline.from_pretrained(tiny_bundle_dir))
    app = create_app(queue, None, token=TOKEN, live=pool)
    wave = load_audio(example.audio, sample_rate=16000)
    with LiveServer(app, send_buffer=4096) as server:
        yield Live(server, pool, queue, example.image, wave)


def _one_sentence(message: dict | None) -> str:
    assert message is not None and message["type"] == "error", message
    words = message["message"]
    assert words.endswith(".") and "\n" not in words and len(words) < 300, words
    return words


def _session(live: Live, messages: list, wait_ready: bool = True, **headers) -> tuple[list, int | None]:
    """Open a session, send `messages` (str or bytes; the first after `ready` when wait_ready),
    and collect the text messages until the server closes: (messages, close code)."""
    live.wait_idle()
    received, code = [], None
    with connect(live.url, additional_headers={"Authorization": f"Bearer {TOKEN}", **headers}) as ws:
        try:
            ws.send(messages[0])
            if wait_ready:
                received.append(json.loads(ws.recv(timeout=30)))
                assert received[-1]["type"] == "ready", received
            for message in messages[1:]:
                ws.send(message)
            while True:
                data = ws.recv(timeout=30)
                if isinstance(data, str):
                    received.append(json.loads(data))
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
    return received, code


def test_a_session_gets_ready_continuous_frames_and_done(live: Live) -> None:
    live.wait_idle()
    wave = live.wave[:16000]
    controls = [(0.4, {"head_motion": 0.0, "emotion": "happy"})]
    result = stream(live.url, wave, image=live.image, token=TOKEN, options=EXAMPLE_OPTIONS, controls=controls)
    ready = result.ready
    assert ready is not None and result.error is None, result.error
    assert (ready["fps"], ready["width"], ready["height"]) == (25, 64, 64)
    assert ready["chunk_ms"] == 120 and ready["lookahead_ms"] == 80 and ready["measured_fps"] > 0
    frames = math.ceil(len(wave) / 640)
    assert result.numbers == list(range(frames))  # in order, none missing, none repeated
    assert result.done == {"type": "done", "frames": frames, "sent": frames, "dropped": 0}
    assert result.messages[0] == "ready" and result.messages[-1] == "done" and result.stats
    assert result.stats[-1]["latency_p50_ms"] is not None and result.stats[-1]["dropped"] == 0
    assert result.close_code == 1000
    image = cv2.imdecode(np.frombuffer(result.frames[0][1], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (64, 64, 3)


def test_other_rates_float_samples_and_a_lower_frame_rate(live: Live) -> None:
    live.wait_idle()
    wave = cv2.resize(live.wave[:16000, None], (1, 48000), interpolation=cv2.INTER_LINEAR)[:, 0]
    result = stream(
        live.url, wave, 48000, image=live.image, token=TOKEN, token_in_query=True, options=EXAMPLE_OPTIONS,
        fmt="f32le", realtime=False, start={"fps": 10},
    )  # fmt: skip
    assert result.error is None and result.ready is not None, result.error
    assert result.ready["fps"] == 10 and result.ready["sample_rate"] == 48000
    assert result.numbers == list(range(10)) and result.done["frames"] == 10


def test_the_token_and_the_origin_are_required(live: Live) -> None:
    live.wait_idle()
    for headers, url in [({}, live.url), ({"Authorization": "Bearer wrong"}, live.url + "?token=wrong")]:
        with pytest.raises(InvalidStatus) as refused, connect(url, additional_headers=headers):
            pass
        assert refused.value.response.status_code == 401
        assert "token" in json.loads(refused.value.response.body)["error"]
    good = {"Authorization": f"Bearer {TOKEN}"}
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(live.url, additional_headers=good, origin="https://evil.example"),
    ):
        pass
    assert refused.value.response.status_code == 403
    handshake = (
        f"GET /v1/live?token={TOKEN} HTTP/1.1\r\nHost: attacker.example\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=10) as sock:
        sock.sendall(handshake.encode())
        assert b" 421 " in sock.recv(4096).split(b"\r\n")[0]  # a DNS-rebinding name
    plain = httpx.get(live.server.url("/v1/live"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert plain.status_code == 426 and "is a WebSocket" in plain.json()["error"]
    result = stream(live.url + "?x=1", live.wave[:1600], image=live.image, token=TOKEN, token_in_query=True,
                    options=EXAMPLE_OPTIONS, realtime=False, origin=f"http://127.0.0.1:{live.server.port}")  # fmt: skip
    assert result.error is None and result.done is not None and result.close_code == 1000


def _pcm(seconds: float) -> bytes:
    return np.zeros(int(seconds * 16000), "<i2").tobytes()


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("format", 1003, "format 's24le' is not supported"),
        ("rate", 1003, "'sample_rate' must be"),
        ("binary first", 1008, "first message must be the text 'start'"),
        ("bad json first", 1008, "not valid JSON"),
        ("bad base64", 1008, "not valid base64"),
        ("not an image", 1008, "not an image"),
        ("bad option", 1008, "Option 'nfe'"),
        ("oversized chunk", 1009, f"at most {MAX_CHUNK_S:g} s of audio"),
        ("control out of range", 1008, "head_motion"),
        ("control not live", 1008, "cannot be changed live"),
        ("bad json", 1008, "not valid JSON"),
        ("unknown type", 1008, "Unknown message type 'jump'"),
        ("odd bytes", 1003, "whole 2-byte samples"),
        ("second start", 1008, "'start' comes once"),
    ],
)
def test_a_bad_message_gets_one_sentence_and_a_close(live: Live, case: str, code: int, words: str) -> None:
    start = live.start()
    first = {
        "format": live.start(format="s24le"),
        "rate": live.start(sample_rate=1234),
        "binary first": _pcm(0.1),
        "bad json first": "{start",
        "bad base64": live.start(image="not base64 at all!"),
        "not an image": live.start(image=base64.b64encode(b"hello, this is no photo").decode()),
        "bad option": live.start(options={"nfe": 0}),
    }.get(case)
    after = {
        "oversized chunk": _pcm(MAX_CHUNK_S + 0.1),
        "control out of range": json.dumps({"type": "control", "head_motion": 99}),
        "control not live": json.dumps({"type": "control", "seed": 3}),
        "bad json": "[1, 2",
        "unknown type": json.dumps({"type": "jump"}),
        "odd bytes": b"\x00\x01\x02",
        "second start": json.dumps(start),
    }.get(case)
    if first is not None:
        messages = [first if isinstance(first, (str, bytes)) else json.dumps(first)]
        received, closed = _session(live, messages, wait_ready=False)
    else:
        received, closed = _session(live, [json.dumps(start), _pcm(0.2), after])
    assert words in _one_sentence(received[-1])
    assert closed == code
    live.wait_idle()


@pytest.mark.slow
def test_the_session_limit_and_the_idle_timeout_hold(live: Live) -> None:
    live.wait_idle()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with connect(live.url, additional_headers=auth) as first:
        first.send(json.dumps(live.start()))
        assert json.loads(first.recv(timeout=30))["type"] == "ready"
        received, code = [], None
        with connect(live.url, additional_headers=auth) as second:
            second.send(json.dumps(live.start()))
            with pytest.raises(ConnectionClosed) as closed:
                received.append(json.loads(second.recv(timeout=30)))
                second.recv(timeout=30)
            code = closed.value.rcvd.code
        assert code == 1013 and "in use" in _one_sentence(received[0])
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:  # the first session now sends nothing
            while True:
                message = first.recv(timeout=30)
                if isinstance(message, str):
                    last = json.loads(message)
        assert IDLE_S - 0.5 < time.monotonic() - started < IDLE_S + 5
        assert closed.value.rcvd.code == 1008 and "No message came for 4 s" in _one_sentence(last)
    live.wait_idle()


@pytest.mark.slow
def test_a_slow_reader_gets_frames_dropped_and_the_worker_is_freed(live: Live) -> None:
    live.wait_idle()
    wave = live.wave[: 16000 * 4]

    read = []

    def pause(k: int, jpeg: bytes) -> None:  # the reader stops for a while (under the idle timeout)
        read.append(k)
        if len(read) == 1:
            time.sleep(IDLE_S - 1)

    result = stream(
        live.url, wave, image=live.image, token=TOKEN, options=EXAMPLE_OPTIONS, realtime=False,
        piece_ms=200, on_frame=pause, receive_buffer=4096,
    )  # fmt: skip
    done = result.done
    assert result.error is None and done is not None, result.error
    assert done["frames"] == math.ceil(len(wave) / 640) == 100
    assert done["dropped"] > 0 and done["sent"] == len(result.frames) == done["frames"] - done["dropped"]
    assert result.numbers == sorted(set(result.numbers))  # increasing, a dropped frame is a missing k
    assert result.stats[-1]["dropped"] == done["dropped"]
    live.wait_idle()  # the worker is free: the next session starts
    follow = stream(live.url, live.wave[:3200], image=live.image, token=TOKEN, options=EXAMPLE_OPTIONS, realtime=False)
    assert follow.ready is not None and follow.done is not None and follow.close_code == 1000


def test_a_finished_jobs_photo_may_be_used(live: Live, tmp_path: Path) -> None:
    photo, audio = tmp_path / "p.png", tmp_path / "a.wav"
    photo.write_bytes(live.image.read_bytes())
    write_example(tmp_path / "ex", seconds=0.5, size=64).audio.replace(audio)
    record = live.queue.submit(photo, audio, EXAMPLE_OPTIONS)
    live.wait_idle()
    result = stream(live.url, live.wave[:3200], job=record.id, token=TOKEN, options=EXAMPLE_OPTIONS, realtime=False)
    assert result.error is None and result.done is not None
    unknown = live.start(job="nope")
    del unknown["image"]
    received, code = _session(live, [json.dumps(unknown)], wait_ready=False)
    assert code == 1008 and "no job 'nope'" in _one_sentence(received[-1])


def test_a_session_ends_at_its_longest_length(live: Live) -> None:
    live.wait_idle()
    limits = live.pool.limits
    live.pool.limits = dataclasses.replace(limits, max_s=1.0)
    try:
        result = stream(live.url, live.wave[:32000], image=live.image, token=TOKEN, options=EXAMPLE_OPTIONS,
                        realtime=False, piece_ms=200)  # fmt: skip
    finally:
        live.pool.limits = limits
    assert result.close_code == 1008 and "longest this server allows, 1 s" in _one_sentence(result.error)
    live.wait_idle()
