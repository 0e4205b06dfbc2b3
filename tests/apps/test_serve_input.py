"""User mistakes in a request are 4xx in one sentence, never 500: options JSON nested deep or
holding numbers JSON has no room for, parameters out of range, job ids that are no job's, and
every option's range as floatalk.options sets it, all checked at submission (the server runs
under uvicorn on 127.0.0.1, without workers)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import httpx
import pytest

from floatalk.apps.examples import write_example
from floatalk.apps.jobs import JobOptions
from floatalk.apps.queue import JobQueue
from floatalk.options import GenerateOptions, field_kinds, option_fields
from support import LiveServer


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[tuple[LiveServer, JobQueue, dict]]:
    from floatalk.apps.server import create_app

    folder = tmp_path_factory.mktemp("input")
    queue = JobQueue(folder / "data", max_queued=1000)
    example = write_example(folder / "example", seconds=1.0)
    files = {"image": ("p.png", example.image.read_bytes()), "audio": ("s.wav", example.audio.read_bytes())}
    with LiveServer(create_app(queue, None)) as server:
        yield server, queue, files


def _one_sentence(answer: httpx.Response, status: int = 400) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and body["error"].endswith(".")
    return body["error"]


def _post(api, options: str | bytes) -> httpx.Response:
    server, _, files = api
    return httpx.post(server.url("/v1/jobs"), files=files, data={"options": options}, timeout=60)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ('{"timeline": ' * 1000 + "1" + "}" * 1000, "nests deeper than 8 levels"),
        ("[" * 32000 + "]" * 32000, "nests deeper than 8 levels"),
        ('{"timeline": {"segments": [[[[[[[[1]]]]]]]]}}', "nests deeper than 8 levels"),
        ('{"seed": NaN}', "NaN is not a JSON number"),
        ('{"a_cfg_scale": Infinity}', "Infinity is not a JSON number"),
        ('{"a_cfg_scale": 1e999}', "too large a number"),
        ('{"seed": ' + "9" * 5000 + "}", "not valid JSON"),
        ('{"seed": 1.5}', "Option 'seed' must be a whole number"),
        ('{"seed": true}', "Option 'seed' must be a whole number"),
        ('{"emotion": ["happy"]}', "Option 'emotion'"),
        ('{"timeline": {"segments": [{"start": 0, "end": 1e300, "head_motion": 1}]}}', "must be between"),
        ("[1, 2]", "must be a JSON object"),
        ('{"face": 2}', "The photo shows 1 face; option 'face' must name one of them (got 2)."),
        ('{"face": 2, "detector": "haar"}', "option 'face' must name one of them"),
    ],
)
def test_options_that_cannot_work_are_400_at_submission(api, options: str, words: str) -> None:
    _, queue, _ = api
    before = queue.counts()["queued"]
    assert words in _one_sentence(_post(api, options))
    assert queue.counts()["queued"] == before


def _numeric_fields() -> list[tuple[type, dataclasses.Field]]:
    found = []
    for cls in (GenerateOptions, JobOptions):
        for f in option_fields(cls):
            meta = f.metadata["floatalk"]
            if field_kinds(cls)[f.name][0] in (int, float) and (meta["low"] is not None or meta["high"] is not None):
                found.append((cls, f))
    return found


@pytest.mark.parametrize(("cls", "field"), _numeric_fields(), ids=lambda v: getattr(v, "name", ""))
def test_every_numeric_options_range_reaches_the_api(api, cls: type, field: dataclasses.Field) -> None:
    meta = field.metadata["floatalk"]
    for value in (meta["low"] - 1 if meta["low"] is not None else None, meta["high"] + 1 if meta["high"] else None):
        if value is not None:
            message = _one_sentence(_post(api, json.dumps({"crop": False, field.name: value})))
            assert f"Option '{field.name}'" in message
    inside = meta["low"] if meta["low"] is not None else meta["high"]  # face 1: the example's one face
    accepted = _post(api, json.dumps({"crop": False, field.name: inside}))
    assert accepted.status_code == 202, accepted.text
    assert httpx.delete(api[0].url(f"/v1/jobs/{accepted.json()['id']}")).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "offset=9223372036854775808",
        "offset=-1",
        "offset=1e3",
        "offset=" + "9" * 5000,
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=99999999999999999999999",
    ],
)
def test_list_parameters_out_of_range_are_400(api, query: str) -> None:
    server, _, _ = api
    assert "Parameter" in _one_sentence(httpx.get(server.url(f"/v1/jobs?{query}")))


def test_the_largest_offset_is_an_empty_page(api) -> None:
    server, _, _ = api
    page = httpx.get(server.url("/v1/jobs?offset=9223372036854775807&limit=100")).json()
    assert page["jobs"] == [] and page["offset"] == 2**63 - 1


@pytest.mark.parametrize(
    "job_id", ["%ED%A0%80", "%00", "x" * 10_000, "..%2F..%2Fetc", "0123456789ABCDEF0123456789ABCDEF"]
)
@pytest.mark.parametrize("route", ["", "/events", "/video"])
def test_ids_that_are_no_jobs_are_404(api, job_id: str, route: str) -> None:
    server, _, _ = api
    for method in ("GET", "DELETE") if route == "" else ("GET",):
        assert _one_sentence(httpx.request(method, server.url(f"/v1/jobs/{job_id}{route}")), 404).startswith(
            "There is no"
        )
