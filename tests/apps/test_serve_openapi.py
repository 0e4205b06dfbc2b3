"""The OpenAPI description describes the API: schemathesis (4.x) generates requests, valid and
invalid, from the live server's own /openapi.json and holds every answer to it (no 5xx, no
status the description does not list, every body and content type as described). The server
runs under uvicorn on 127.0.0.1 with a done and a failed job in its queue and no workers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support import LiveServer

schemathesis = pytest.importorskip("schemathesis", reason="pip install 'schemathesis>=4,<5' (the test extra)")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from floatalk.apps.examples import write_example  # noqa: E402
from floatalk.apps.queue import JobQueue  # noqa: E402
from floatalk.apps.uploads import Limits  # noqa: E402

# generated requests against a live server: the full suite (CI) runs these, the fast tier does not
pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
EXAMPLES = 30  # per operation; the seven operations take about 20 s on two busy cores


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[LiveServer]:
    from floatalk.apps.server import create_app

    folder = tmp_path_factory.mktemp("openapi")
    queue = JobQueue(folder / "data")
    for n, state in enumerate(("done", "failed")):
        example = write_example(folder / f"example{n}", seconds=1.0)
        job = queue.submit(example.image, example.audio, {"crop": False, "seed": n}).id
        queue.claim()
        if state == "done":
            (queue.jobs_dir / job / "video.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
        queue.finish(job, state, "The photo shows no face." if state == "failed" else None)
    limits = Limits(max_upload_bytes=1024 * 1024, body_timeout_s=10.0)
    with LiveServer(create_app(queue, None, limits=limits)) as server:
        yield server


@pytest.fixture
def api_schema(api: LiveServer):
    return schemathesis.openapi.from_url(api.url("/openapi.json"))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_answer_is_as_the_description_says(case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_every_status_has_a_described_body_and_no_422_is_left(api: LiveServer) -> None:
    spec = httpx.get(api.url("/openapi.json")).json()
    assert {"ErrorBody", "Job", "JobList", "Health"} <= set(spec["components"]["schemas"])
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "422" not in statuses and "421" in statuses, (method, path)
            assert method == "get" or "403" in statuses
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                assert content, (method, path, status)
                for body in content.values():
                    assert body["schema"] not in ({}, None), (method, path, status)
    submit = spec["paths"]["/v1/jobs"]["post"]["responses"]
    assert {"202", "400", "403", "408", "413", "415", "421", "503", "507"} == set(submit)


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/jobs", "GET, HEAD, OPTIONS, POST"),
        ("/v1/jobs/0123456789abcdef0123456789abcdef", "DELETE, GET, HEAD, OPTIONS"),
        ("/v1/jobs/x/video", "GET, HEAD, OPTIONS"),
        ("/v1/health", "GET, HEAD, OPTIONS"),
        ("/openapi.json", "GET, HEAD, OPTIONS"),
    ],
)
def test_options_head_and_405_say_what_each_route_allows(api: LiveServer, path: str, methods: str) -> None:
    options = httpx.options(api.url(path))
    assert options.status_code == 204 and options.headers["allow"] == methods and options.content == b""
    refused = httpx.request("PATCH", api.url(path))
    assert refused.status_code == 405 and refused.headers["allow"] == methods
    assert list(refused.json()) == ["error"]
    got, head = httpx.get(api.url(path)), httpx.head(api.url(path))
    assert head.status_code == got.status_code and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_head_of_an_event_stream_ends_at_once(api: LiveServer) -> None:
    job = httpx.get(api.url("/v1/jobs")).json()["jobs"][0]["id"]
    head = httpx.head(api.url(f"/v1/jobs/{job}/events"), timeout=5)
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
