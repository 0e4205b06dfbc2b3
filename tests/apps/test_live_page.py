"""The live page's routes without a browser: the page and its settings, the token it is given, the
example's files, and the guard asking a browser for the token as it does on the web page.
(tests/apps/test_live_browser.py runs the page in Chromium.)"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from floatalk.apps.examples import write_example
from floatalk.apps.live.page import LIVE_PATH, page_config, relative_link
from floatalk.apps.queue import JobQueue
from floatalk.config import EMOTIONS

TOKEN = "s3cret-t0ken"


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    """A data folder whose example is already written (1 s), as the web page leaves it."""
    data = tmp_path_factory.mktemp("live_page") / "data"
    write_example(data / "example", seconds=1.0)
    return data


def _client(data: Path, token: str | None = None) -> TestClient:
    from floatalk.apps.server import create_app

    app = create_app(JobQueue(data), None, token=token, page_prefix="/ui")
    return TestClient(app, base_url="http://127.0.0.1")


def _config(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="live-config">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))


def _token_in(page: str) -> str:
    found = re.search(r'<meta name="floatalk-token" content="([^"]*)">', page)
    assert found is not None
    return found.group(1)


def test_the_page_is_served_at_live_with_its_settings(example_dir: Path) -> None:
    client = _client(example_dir)
    answer = client.get(f"{LIVE_PATH}/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    config = _config(answer.text)
    assert config["endpoint"] == "../v1/live" and config["ui"] == "../ui/" and config["auth"] is False
    assert config["emotions"] == ["auto", *EMOTIONS]
    assert config["example"]["options"] == {"crop": False}
    assert set(config["ranges"]) == {"head_motion", "mouth_scale", "expression_scale", "e_cfg_scale"}
    assert _token_in(answer.text) == ""
    for element in ("start", "stop", "screen", "use-example", "emotion", "latency", "fps", "frames-drawn"):
        assert f'id="{element}"' in answer.text


def test_the_page_loads_nothing_from_elsewhere(example_dir: Path) -> None:
    page = _client(example_dir).get(f"{LIVE_PATH}/").text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "import(" not in page
    assert re.findall(r"<link[^>]*>", page) == ['<link rel="icon" href="data:,">']  # no favicon request either


def test_live_without_the_slash_leads_to_the_page_keeping_the_query(example_dir: Path) -> None:
    answer = _client(example_dir).get(f"{LIVE_PATH}?token=abc", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == f"{LIVE_PATH}/?token=abc"


def test_the_example_is_served_from_the_data_folder(example_dir: Path) -> None:
    client = _client(example_dir)
    photo = client.get(f"{LIVE_PATH}/example.png")
    assert photo.status_code == 200 and photo.content == (example_dir / "example" / "portrait.png").read_bytes()
    speech = client.get(f"{LIVE_PATH}/example.wav")
    assert speech.status_code == 200 and speech.content[:4] == b"RIFF"


def test_with_a_token_a_browser_is_asked_for_it_as_on_the_web_page(example_dir: Path) -> None:
    client = _client(example_dir, TOKEN)
    for path in (f"{LIVE_PATH}/", f"{LIVE_PATH}/example.png"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        assert refused.json()["error"].endswith("(any user name).")
    basic = base64.b64encode(f"me:{TOKEN}".encode()).decode()
    page = client.get(f"{LIVE_PATH}/", headers={"Authorization": f"Basic {basic}"})
    assert page.status_code == 200 and _config(page.text)["auth"] is True
    assert _token_in(page.text) == TOKEN  # for the WebSocket's address, which cannot carry the Basic password
    bearer = client.get(f"{LIVE_PATH}/example.png", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


def test_a_page_served_without_a_token_holds_none(example_dir: Path) -> None:
    basic = base64.b64encode(b"me:whatever").decode()
    page = _client(example_dir).get(f"{LIVE_PATH}/?token=guess", headers={"Authorization": f"Basic {basic}"})
    assert page.status_code == 200 and _token_in(page.text) == ""


def test_links_between_pages_are_relative() -> None:
    assert relative_link("/live", "/v1/live") == "../v1/live"
    assert relative_link("/a/live", "/ui") == "../../ui"
    assert page_config(auth=True, endpoint="x", ui=None)["ui"] is None


def test_the_page_but_not_its_files_takes_the_token_in_its_address(example_dir: Path) -> None:
    client = _client(example_dir, TOKEN)
    page = client.get(f"{LIVE_PATH}/?token={TOKEN}")
    assert page.status_code == 200 and _token_in(page.text) == TOKEN
    assert client.get(f"{LIVE_PATH}/?token=wrong").status_code == 401
    assert client.get(f"{LIVE_PATH}/example.png?token={TOKEN}").status_code == 401  # the page fetches it with a header
    assert client.get(f"/v1/jobs?token={TOKEN}").status_code == 401  # the API keeps its header
