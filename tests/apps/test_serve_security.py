"""Cross-site requests and DNS rebinding against a real uvicorn on 127.0.0.1 (the API with its web
page, no token): a Host that is not the server's gets 421, a request that changes state from
another site's page gets 403, and no answer carries CORS headers for an origin not allowed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from floatalk.apps.examples import write_example
from floatalk.apps.hosts import HostRules
from floatalk.apps.queue import JobQueue
from support import LiveServer

EVIL = "http://attacker.example"
ALLOWED = "https://app.example"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[LiveServer, JobQueue, Path]]:
    """The API and the page on one app, allowing one other origin and one proxy name."""
    from floatalk.apps.server import create_app
    from floatalk.apps.ui import mount_ui

    folder = tmp_path_factory.mktemp("security")
    queue = JobQueue(folder / "data")
    rules = HostRules("127.0.0.1", allowed_hosts=("proxy.example",), allow_origins=(ALLOWED,))
    app = create_app(queue, None, page_prefix="/ui", rules=rules)
    mount_ui(app, queue, "/ui", example_dir=folder / "example")
    example = write_example(folder / "files", seconds=1.0)
    with LiveServer(app) as server:
        yield server, queue, example.image.parent


def _files(folder: Path) -> dict:
    return {
        "image": ("p.png", (folder / "portrait.png").read_bytes(), "image/png"),
        "audio": ("s.wav", (folder / "speech.wav").read_bytes(), "audio/wav"),
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/jobs"), ("GET", "/v1/health"), ("GET", "/openapi.json"), ("GET", "/ui/config"), ("POST", "/v1/jobs")],
)
@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:80", "localhost.attacker.example", "[::2]"])
def test_a_host_that_is_not_the_servers_gets_421(site, method: str, path: str, host: str) -> None:
    server, _, _ = site
    answer = httpx.request(method, server.url(path), headers={"Host": host})
    assert answer.status_code == 421
    assert list(answer.json()) == ["error"] and "--allowed-host" in answer.json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:8000", "[::1]:9", "proxy.example"])
def test_the_servers_own_names_and_allowed_hosts_are_answered(site, host: str) -> None:
    server, _, _ = site
    assert httpx.get(server.url("/v1/health"), headers={"Host": host}).status_code == 200


def test_a_job_posted_from_another_sites_page_is_refused_and_leaves_nothing(site) -> None:
    server, queue, files = site
    before = queue.counts()["queued"]
    own_port_other_name = f"http://localhost:{server.port}"  # Host is 127.0.0.1: another origin
    for origin in (EVIL, "null", own_port_other_name, f"http://127.0.0.1:{server.port + 1}", "file://"):
        answer = httpx.post(server.url("/v1/jobs"), files=_files(files), headers={"Origin": origin})
        assert answer.status_code == 403, origin
        assert "--allow-origin" in answer.json()["error"]
    # a browser that sends no Origin but says the request is cross-site
    answer = httpx.post(server.url("/v1/jobs"), files=_files(files), headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    assert queue.counts()["queued"] == before
    assert not [p for p in (queue.data_dir / "incoming").iterdir()]


def test_the_servers_own_page_and_clients_without_origin_may_post(site) -> None:
    server, queue, files = site
    for headers in (
        {},
        {"Origin": server.url()},
        {"Origin": f"http://localhost:{server.port}", "Host": f"localhost:{server.port}"},
    ):
        answer = httpx.post(
            server.url("/v1/jobs"), files=_files(files), data={"options": '{"crop": false}'}, headers=headers
        )
        assert answer.status_code == 202, (headers, answer.text)
        assert not set(CORS_HEADERS) & set(answer.headers)
        job = answer.json()["id"]
        # a cancel from another site is refused, the site's own goes through
        assert httpx.delete(server.url(f"/v1/jobs/{job}"), headers={"Origin": EVIL}).status_code == 403
        assert queue.get(job).state == "queued"
        assert httpx.delete(server.url(f"/v1/jobs/{job}"), headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/ui/config", "/ui/gradio_api/info", "/v1/jobs", "/openapi.json"])
@pytest.mark.parametrize("origin", [EVIL, "http://localhost:7860", "http://127.0.0.1:7860", "null"])
def test_no_cors_headers_for_origins_not_allowed(site, path: str, origin: str) -> None:
    server, _, _ = site
    answer = httpx.get(server.url(path), headers={"Origin": origin})
    assert answer.status_code == 200
    assert not set(CORS_HEADERS) & set(answer.headers), dict(answer.headers)


@pytest.mark.parametrize("path", ["/v1/jobs", "/ui/gradio_api/queue/join", "/ui/gradio_api/upload"])
def test_preflights_from_origins_not_allowed_are_refused(site, path: str) -> None:
    server, _, _ = site
    for origin in (EVIL, "http://localhost:7860", "http://127.0.0.1:1"):
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        answer = httpx.options(server.url(path), headers=headers)
        assert answer.status_code == 403 and not set(CORS_HEADERS) & set(answer.headers)


def test_an_allowed_origin_gets_cors_without_credentials(site) -> None:
    server, _, files = site
    preflight = httpx.options(
        server.url("/v1/jobs"),
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in preflight.headers
    answer = httpx.post(server.url("/v1/jobs"), files=_files(files), headers={"Origin": ALLOWED})
    assert answer.status_code == 202
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in answer.headers
    assert (
        httpx.get(server.url("/ui/config"), headers={"Origin": ALLOWED}).headers["access-control-allow-origin"]
        == ALLOWED
    )


def test_a_websocket_from_another_site_is_closed_before_it_opens(site) -> None:
    server, _, _ = site
    request = (
        f"GET /ui/gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {EVIL}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        status = sock.recv(4096).split(b"\r\n")[0]
    assert b" 403 " in status


def test_host_rules_for_a_server_listening_everywhere() -> None:
    rules = HostRules("0.0.0.0")
    assert rules.host_allowed("192.168.1.20") and rules.host_allowed("localhost")
    assert not rules.host_allowed("attacker.example")
    specific = HostRules("192.168.1.20", allowed_hosts=("Talk.Example.",))
    assert specific.host_allowed("192.168.1.20") and specific.host_allowed("talk.example")
    assert not specific.host_allowed("127.0.0.1") and not specific.host_allowed("localhost")
    with pytest.raises(ValueError):
        HostRules(allow_origins=("app.example",))


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_a_bad_allow_origin_flag_is_one_sentence(tmp_path, capsys, command: str) -> None:
    from floatalk.cli.main import main

    assert main([command, "--data-dir", str(tmp_path / "d"), "--allow-origin", "app.example"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--allow-origin takes an origin" in err and len(err.splitlines()) == 1


def test_a_token_in_an_address_never_reaches_the_log() -> None:
    # the live page sends the token as ?token= (a browser cannot set a WebSocket's headers);
    # uvicorn logs a WebSocket's address with its query
    import logging

    from floatalk.apps.server.auth import redact_tokens_in_logs

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("uvicorn.error")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        redact_tokens_in_logs()
        logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/v1/live?token=S3cret&x=1")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert lines == ['127.0.0.1:5 - "WebSocket /v1/live?token=***&x=1" [accepted]']
