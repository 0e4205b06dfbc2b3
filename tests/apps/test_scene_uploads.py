"""Scenes through the HTTP API (`POST /v1/jobs`, checked by floatalk.apps.scene_uploads): a group
photo with a voice part per speaker or one mixed recording and its turns, queued into the job's
folder and read back by the worker; every input that cannot work is a 400 in one sentence that
leaves nothing behind; a job of one face is as it was. The server runs under uvicorn on
127.0.0.1; the slow test renders with the bundled model."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from floatalk.apps.examples import write_example
from floatalk.apps.queue import JobQueue, Workers
from floatalk.io.audio import write_wav
from support import LiveServer, tone_voice

TWO = {"speakers": [{"face": 1, "audio": "voice1"}, {"face": 2, "audio": "voice2", "emotion": "happy"}]}
MIXED = {"turns": [{"start": 0, "end": 0.5, "face": 1}, {"start": 0.6, "end": 1.2, "face": 2}], "others": "idle"}
HAAR = {"detector": "haar", "nfe": 2}


@pytest.fixture(scope="module")
def media(scene_files: Path, tmp_path_factory) -> dict[str, Path]:
    """The scene's photo and recordings, a recording over the API's 60 s and the one-face example."""
    folder = tmp_path_factory.mktemp("scene_api")
    files = {name: scene_files / f"{name}.{'png' if name == 'photo' else 'wav'}" for name in ("photo", "ann", "bob")}
    files |= {name: scene_files / f"{name}.wav" for name in ("mix", "quiet")}
    long = tone_voice(0.0, 61.0, 220, 61.0)
    write_wav(folder / "long.wav", np.rint(long * 32767).astype(np.int16), 16000)
    example = write_example(folder / "example", seconds=1.0)
    return {**files, "long": folder / "long.wav", "portrait": example.image, "speech": example.audio}


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[tuple[LiveServer, JobQueue]]:
    from floatalk.apps.server import create_app

    queue = JobQueue(tmp_path_factory.mktemp("scene_api_data") / "data", max_queued=1000)
    with LiveServer(create_app(queue, None)) as server:
        yield server, queue


def post(server: LiveServer, media: dict, options: dict | None, **parts: str) -> httpx.Response:
    """POST /v1/jobs with the photo (or parts["image"]) and the named media as file parts."""
    parts.setdefault("image", "photo")
    files = [(part, (media[name].name, media[name].read_bytes())) for part, name in parts.items()]
    data = {"options": json.dumps(options)} if options is not None else None
    return httpx.post(server.url("/v1/jobs"), files=files, data=data, timeout=60)


def left(queue: JobQueue) -> list[str]:
    """What the data folder holds besides the database: the jobs' files and incoming uploads."""
    return sorted(
        str(p.relative_to(queue.data_dir)) for p in queue.data_dir.rglob("*") if p.is_file() and "queue" not in p.name
    )


def test_a_scene_with_a_voice_part_per_speaker_is_queued_with_its_recordings(api, media) -> None:
    server, queue = api
    answer = post(server, media, {**TWO, **HAAR, "others": "idle"}, voice1="ann", voice2="bob")
    assert answer.status_code == 202, answer.text
    record = answer.json()
    assert record["state"] == "queued" and record["options"] == {**TWO, **HAAR, "others": "idle"}
    folder = queue.jobs_dir / record["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["image.png", "speaker1.wav", "speaker2.wav"]
    scene = queue.job_scene(record["id"])
    assert [(s.face, s.audio, dict(s.options)) for s in scene.speakers] == [
        (1, folder / "speaker1.wav", {}),
        (2, folder / "speaker2.wav", {"emotion": "happy"}),
    ]
    assert scene.others == "idle" and scene.turns is None and not scene.mixed
    image, audio, _ = queue.paths(record["id"])
    assert image == folder / "image.png" and audio is None
    assert queue.job_options(record["id"]).generate.nfe == 2
    assert not list((queue.data_dir / "incoming").iterdir())
    queue.cancel(record["id"])  # a cancelled job's inputs go, the extra recordings too
    assert not list(folder.iterdir())


def test_a_mixed_recording_with_turns_is_queued_as_its_audio(api, media) -> None:
    server, queue = api
    answer = post(server, media, {**MIXED, **HAAR, "speakers": [{"face": 2, "seed": 5}]}, audio="mix")
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert sorted(p.name for p in (queue.jobs_dir / job_id).iterdir()) == ["audio.wav", "image.png"]
    scene = queue.job_scene(job_id)
    assert scene.mixed and scene.turns.spans(2) == [(0.6, 1.2)] and scene.speakers[0].options == {"seed": 5}
    assert queue.paths(job_id)[1] == queue.jobs_dir / job_id / "audio.wav"
    queue.cancel(job_id)


def test_a_job_of_one_face_is_as_it_was(api, media) -> None:
    server, queue = api
    answer = post(server, media, {"crop": False}, image="portrait", audio="speech")
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert answer.json()["options"] == {"crop": False}
    assert sorted(p.name for p in (queue.jobs_dir / job_id).iterdir()) == ["audio.wav", "image.png"]
    assert queue.job_scene(job_id) is None and queue.paths(job_id)[1] == queue.jobs_dir / job_id / "audio.wav"
    missing = post(server, media, {"crop": False}, image="portrait")
    assert missing.status_code == 400 and "lacks the file part 'audio'" in missing.json()["error"]
    queue.cancel(job_id)


SPEAKER_1 = {"face": 1, "audio": "voice1"}
BAD_SCENES = {
    "a voice part no speaker names": (
        {"speakers": [SPEAKER_1]},
        {"voice1": "ann", "voice2": "bob"},
        "'voice2' was sent, but no speaker names it",
    ),
    "voice parts without speakers": (None, {"voice1": "ann"}, "'voice1' was sent, but no speaker names it"),
    "a part that was not sent": (
        {"speakers": [{"face": 1, "audio": "voice3"}]},
        {"voice1": "ann"},
        "names the part 'voice3', which was not sent",
    ),
    "a part that is no voice part": (
        {"speakers": [{"face": 1, "audio": "ann.wav"}]},
        {"voice1": "ann"},
        "must name its recording's part, 'voice1' to 'voice8'",
    ),
    "one part for two speakers": (
        {"speakers": [SPEAKER_1, {"face": 2, "audio": "voice1"}]},
        {"voice1": "ann"},
        "both name the part 'voice1'",
    ),
    "two speakers on one face": (
        {"speakers": [SPEAKER_1, {"face": 1, "audio": "voice2"}]},
        {"voice1": "ann", "voice2": "bob"},
        "Two speakers were given for face 1",
    ),
    "a face the photo lacks": (
        {"speakers": [SPEAKER_1, {"face": 3, "audio": "voice2"}]},
        {"voice1": "ann", "voice2": "bob"},
        "The photo has 2 faces (numbered from the left); there is no face 3",
    ),
    "a recording without sound": (
        {"speakers": [SPEAKER_1, {"face": 2, "audio": "voice2"}]},
        {"voice1": "ann", "voice2": "quiet"},
        "The recording of face 2 (voice2) has no sound",
    ),
    "a voice that is no recording": (
        {"speakers": [SPEAKER_1]},
        {"voice1": "photo"},
        "The 'voice1' upload is not a sound recording",
    ),
    "a voice over the length limit": (
        {"speakers": [SPEAKER_1]},
        {"voice1": "long"},
        "The 'voice1' recording is longer than 60 s",
    ),
    "a mixed recording and voices": ({**MIXED, "speakers": [SPEAKER_1]}, {"audio": "mix", "voice1": "ann"}, "not both"),
    "turns without a recording": (MIXED, {}, "lacks the file part 'audio'"),
    "mixed audio without turns": ({"speakers": [{"face": 1}]}, {"audio": "mix"}, "needs 'turns'"),
    "turns that overlap": (
        {"turns": [{"start": 0, "end": 1, "face": 1}, {"start": 0.5, "end": 1.2, "face": 2}]},
        {"audio": "mix"},
        "Turns overlap",
    ),
    "turns past the recording's end": (
        {"turns": [{"start": 0, "end": 5, "face": 1}]},
        {"audio": "mix"},
        "passes the end of the 1.20 s recording",
    ),
    "a mixed recording without sound": (MIXED, {"audio": "quiet"}, "The mixed recording (audio) has no sound"),
    "a pose video": (
        {"speakers": [SPEAKER_1]},
        {"voice1": "ann", "pose_video": "ann"},
        "A scene takes no 'pose_video'",
    ),
    "paste_back": (
        {"speakers": [SPEAKER_1], "paste_back": True},
        {"voice1": "ann"},
        "'paste_back' does not apply to a scene",
    ),
    "crop off": ({"speakers": [SPEAKER_1], "crop": False}, {"voice1": "ann"}, "always crops"),
    "others unknown": (
        {"speakers": [SPEAKER_1], "others": "dance"},
        {"voice1": "ann"},
        "'others' must be 'still' or 'idle'",
    ),
    "a speaker's option out of range": (
        {"speakers": [{**SPEAKER_1, "nfe": 0}]},
        {"voice1": "ann"},
        "nfe for face 1 must be",
    ),
    "an unknown option": ({"speakers": [SPEAKER_1], "colour": 1}, {"voice1": "ann"}, "Unknown option 'colour'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENES))
def test_a_scene_that_cannot_work_is_400_in_one_sentence_and_leaves_nothing(api, media, case: str) -> None:
    server, queue = api
    options, parts, words = BAD_SCENES[case]
    before, queued = left(queue), queue.counts()["queued"]
    options = None if options is None else {**options, "detector": "haar"}
    answer = post(server, media, options, **parts)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert list(body) == ["error"] and words in body["error"], body
    assert "\n" not in body["error"] and body["error"].endswith(".") and ".upload-" not in body["error"]
    assert left(queue) == before and queue.counts()["queued"] == queued


def test_the_openapi_description_names_the_voice_parts_and_the_scene_keys(api) -> None:
    server, _ = api
    described = httpx.get(server.url("/openapi.json"), timeout=30).json()
    body = described["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["image"] and {"voice1", "voice8"} <= set(body["properties"])
    assert "'speakers'" in body["properties"]["options"]["description"]


def test_an_older_job_store_row_reads_as_a_job_of_one_face(tmp_path, media) -> None:
    queue = JobQueue(tmp_path / "data")
    image, audio = tmp_path / "p.png", tmp_path / "s.wav"
    shutil.copy(media["portrait"], image)
    shutil.copy(media["speech"], audio)
    record = queue.submit(image, audio, {"crop": False})
    with queue.database.transaction() as db:  # as a version before scenes wrote it: no checked options
        db.execute("UPDATE jobs SET checked = NULL WHERE id = ?", (record.id,))
    assert queue.job_scene(record.id) is None and queue.job_options(record.id).generate.crop is False


def _video(data: bytes) -> tuple[int, int, int, bool]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return stream.width, stream.height, frames, bool(container.streams.audio)


@pytest.mark.slow
def test_scenes_run_through_the_api_to_their_videos(tmp_path, media) -> None:
    from floatalk.apps.server import create_app

    queue = JobQueue(tmp_path / "data")
    workers = Workers(queue)  # the bundled model
    workers.start()
    try:
        with LiveServer(create_app(queue, workers)) as server:
            voices = post(server, media, {**TWO, "detector": "haar"}, voice1="ann", voice2="bob")
            mixed = post(server, media, {**MIXED, "detector": "haar"}, audio="mix")
            assert voices.status_code == 202 and mixed.status_code == 202, (voices.text, mixed.text)
            for answer in (voices, mixed):
                job_id = answer.json()["id"]
                record = queue.wait(job_id, None, 0)
                while not record.final:
                    record = queue.wait(job_id, record.updated, 120.0)
                assert record.state == "done", record.error
                video = httpx.get(server.url(f"/v1/jobs/{job_id}/video"), timeout=60)
                assert video.status_code == 200
                width, height, frames, sound = _video(video.content)
                assert (width, height) == (212, 136) and sound and frames >= 25
    finally:
        workers.stop()
