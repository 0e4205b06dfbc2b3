"""The live page in a real headless Chromium with a fake microphone fed from a speech file: the
server (the API, the live endpoint with a tiny model, the live page, a token) runs on 127.0.0.1 in
this process; the browser opens /live/?token=..., uses the example photo, presses Start with the
microphone, and the stream starts, frames are drawn on the canvas, the page shows latency and
frames per second, and a slider's change reaches the running session.

Needs Chromium and its driver, as tests/apps/test_ui_browser.py (Debian: apt-get install chromium
chromium-driver; or FLOATALK_CHROMIUM and FLOATALK_CHROMEDRIVER); without them it skips, except
under CI. With FLOATALK_LIVE_SCREENSHOT=path the server runs the bundled model instead of the
tiny one and the test saves a screenshot of the page in action there (docs/live_screenshot.png
is made this way).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from floatalk.apps.examples import write_example
from floatalk.apps.queue import JobQueue
from support import LiveServer

# a server and a browser: the full suite (CI) runs it, the fast tier does not
pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("FLOATALK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLOATALK_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT = os.environ.get("FLOATALK_LIVE_SCREENSHOT")
TOKEN = "live-page-token"
FRAMES_DEADLINE_S = 90.0
BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1360,1000",
    "--autoplay-policy=no-user-gesture-required",
    # the microphone is Chromium's test device, fed from a file (looped), allowed without asking
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)


def _need_browser() -> None:
    """Skip (or, under CI, fail) when Chromium, its driver or Selenium is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(path) and os.access(path, os.X_OK))]
    missing += [f"the {name} package" for name in ("selenium",) if importlib.util.find_spec(name) is None]
    if missing:
        message = f"the live page's browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so this is a failure")
        pytest.skip(message)


@dataclass
class Site:
    server: LiveServer
    speech: Path  # what the fake microphone says
    controls: list[dict]  # every LiveSession.update the server made, in order
    loudness: list[float]  # the RMS of every piece of audio the server's sessions were given

    def page(self, token: str = TOKEN) -> str:
        return self.server.url(f"/live/?token={token}")


@pytest.fixture(scope="module")
def site(tmp_path_factory, tiny_bundle_dir: Path) -> Iterator[Site]:
    """The API with the live endpoint (one session slot; the tiny model, or the bundled one for a
    screenshot), the live page and a token, served by uvicorn on 127.0.0.1; the example's speech
    (16-bit PCM WAV, as Chromium's fake microphone wants it) written beside."""
    from floatalk.apps.live.sessions import LiveLimits, LivePool
    from floatalk.apps.server import create_app
    from floatalk.live.session import LiveSession
    from floatalk.pipeline import FloatPipeline

    _need_browser()
    folder = tmp_path_factory.mktemp("live_page")
    speech = write_example(folder / "speech", seconds=6.0).audio
    model = "bundled" if SCREENSHOT else tiny_bundle_dir
    # min_speed 0: this shared machine runs the browser beside the model; its speed is not the point here
    limits = LiveLimits(1, 30.0, min_speed=0.0)
    pool = LivePool(limits=limits, loader=lambda: FloatPipeline.from_pretrained(model))
    app = create_app(JobQueue(folder / "data"), None, token=TOKEN, page_prefix="/ui", live=pool)
    controls: list[dict] = []
    loudness: list[float] = []
    update, push = LiveSession.update, LiveSession.push

    # the server's sessions run in this process: note what reaches them
    def recorded_update(self, **changes):
        controls.append(dict(changes))
        return update(self, **changes)

    def recorded_push(self, pcm):
        loudness.append(float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if len(pcm) else 0.0)
        return push(self, pcm)

    patch = pytest.MonkeyPatch()
    patch.setattr(LiveSession, "update", recorded_update)
    patch.setattr(LiveSession, "push", recorded_push)
    try:
        with LiveServer(app) as server:
            yield Site(server, speech, controls, loudness)
    finally:
        patch.undo()


@pytest.fixture()
def browser(site: Site):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not look for a driver online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--use-file-for-fake-audio-capture={site.speech}")
    profile = tempfile.mkdtemp(prefix="floatalk-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _until(what: str, deadline_s: float, check):
    """Poll check() until it returns something truthy, failing with `what` after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {deadline_s} s waiting for {what}"
        time.sleep(0.2)


def _text(browser, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id).text.strip()


def _drawn(browser) -> int:
    return int(_text(browser, "frames-drawn") or 0)


def _canvas_digest(browser) -> str:
    """A digest of the canvas's pixels, as the page drew them."""
    pixels = browser.execute_script(
        "const c = document.getElementById('screen');"
        "const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "return Array.from(data.filter((_, i) => i % 7 === 0));"
    )
    return hashlib.sha1(bytes(pixels)).hexdigest()


def _no_error(browser) -> None:
    error = _text(browser, "error")
    assert not error, f"the page shows an error: {error}"


def _use_example(browser) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "use-example").click()
    _until("the example photo", 60, lambda: _text(browser, "photo-name").startswith("The example"))
    assert not browser.find_element(By.ID, "crop").is_selected()  # the example is animated uncropped


def test_the_microphone_makes_the_portrait_talk_in_the_browser(site: Site, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(site.page())
    assert "token" not in browser.current_url  # taken out of the address bar once read
    _until("the page", 30, lambda: browser.find_elements(By.ID, "start"))
    outside = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith('http://127.0.0.1') && !n.startsWith('data:') && !n.startsWith('blob:'))"
    )
    assert outside == [], f"the page fetched resources from elsewhere: {outside}"
    assert browser.find_element(By.ID, "source-mic").is_selected()

    _use_example(browser)
    blank = _canvas_digest(browser)
    browser.find_element(By.ID, "start").click()
    _until(
        "the stream to start",
        FRAMES_DEADLINE_S,
        lambda: _text(browser, "status").startswith("Live") or _text(browser, "error"),
    )
    _no_error(browser)
    _until("10 frames drawn", FRAMES_DEADLINE_S, lambda: _drawn(browser) >= 10 or _text(browser, "error"))
    _no_error(browser)
    first = _canvas_digest(browser)
    assert first != blank, "nothing was drawn on the canvas"
    _until("the picture to change", 30, lambda: _canvas_digest(browser) != first)
    _until("a latency figure", 30, lambda: re.fullmatch(r"\d+ ms", _text(browser, "latency")))
    _until("a frame rate", 30, lambda: re.fullmatch(r"\d+\.\d / \d+\.\d", _text(browser, "fps")))
    _until("the server's figures", 30, lambda: re.fullmatch(r"\d+(\.\d)?", _text(browser, "server-fps")))
    assert re.fullmatch(r"\d+ ms", _text(browser, "server-latency"))
    assert max(site.loudness) > 0.02  # the microphone carried the speech file, not silence

    # a control changes the running stream: the session gets it, the stream goes on, no error
    browser.execute_script(
        "const s = document.getElementById('head_motion'); s.value = '0'; s.dispatchEvent(new Event('input'));"
    )
    _until("the control to be sent", 10, lambda: _text(browser, "controls-sent") == "1")
    _until("the control to reach the session", 30, lambda: {"head_motion": 0.0} in site.controls)
    drawn = _drawn(browser)
    _until("frames after the control", 60, lambda: _drawn(browser) >= drawn + 10 or _text(browser, "error"))
    _no_error(browser)
    if SCREENSHOT:
        _save_screenshot(browser, Path(SCREENSHOT))

    browser.find_element(By.ID, "stop").click()
    _until("the stream to end", 60, lambda: _text(browser, "status").startswith("Done") or _text(browser, "error"))
    _no_error(browser)
    made = int(re.match(r"Done: (\d+) frames made", _text(browser, "status")).group(1))
    assert made >= _drawn(browser) > 10
    assert not browser.find_element(By.ID, "start").get_attribute("disabled")  # ready for another run


def test_an_audio_file_is_streamed_at_its_speed_and_played_with_the_frames(site: Site, browser) -> None:
    """The example's speech (4 s) as a file, at 10 frames a second asked: every frame comes, the
    page draws them in time with the sound it plays, and says when the stream is done."""
    from selenium.webdriver.common.by import By

    browser.get(site.page())
    _use_example(browser)
    browser.find_element(By.ID, "use-example-speech").click()
    _until("the example speech", 60, lambda: browser.find_element(By.ID, "source-file").is_selected())
    browser.find_element(By.ID, "fps-asked").send_keys("10")
    started = time.monotonic()
    browser.find_element(By.ID, "start").click()
    _until("the stream to start", FRAMES_DEADLINE_S, lambda: _text(browser, "status").startswith("Live"))
    assert "fps 10" in _text(browser, "server-stats")  # the ready message's frame rate
    _until(
        "the stream to end",
        FRAMES_DEADLINE_S,
        lambda: _text(browser, "status").startswith("Done") or _text(browser, "error"),
    )
    _no_error(browser)
    assert time.monotonic() - started > 4.0  # streamed at its own speed, not all at once
    made = int(re.match(r"Done: (\d+) frames made", _text(browser, "status")).group(1))
    assert made == 40  # 4 s at 10 frames a second
    assert 0 < _drawn(browser) <= made


def test_the_servers_refusal_is_shown_in_its_words(site: Site, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(site.page())
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_bytes(b"these are not the pixels you are looking for")
    browser.find_element(By.ID, "photo-file").send_keys(str(not_a_photo))
    _until("the file to be read", 10, lambda: _text(browser, "photo-name") == "notes.png")
    browser.find_element(By.ID, "start").click()
    error = _until("the server's answer", 60, lambda: _text(browser, "error"))
    assert error.endswith(".") and "\n" not in error and "WebSocket code" not in error
    _until("the page to be ready again", 10, lambda: not browser.find_element(By.ID, "start").get_attribute("disabled"))


def test_a_wrong_token_is_refused_before_the_page(site: Site) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(site.page("wrong"), timeout=10)
    assert refused.value.code == 401 and refused.value.headers["WWW-Authenticate"].startswith("Basic")


def test_the_pages_resampler_makes_16_khz(site: Site, browser) -> None:
    """The page's resampler (48, 44.1 and 8 kHz to 16 kHz, in pieces of any size) keeps a tone in
    band and its length, and takes a tone above 8 kHz out."""
    browser.get(site.page())
    rows = browser.execute_script(
        """
        const rows = [];
        for (const [rate, freq] of [[48000, 1000], [44100, 440], [8000, 200], [48000, 12000]]) {
          const resampler = new window.floatalkLive.Resampler(rate, 16000);
          const x = new Float32Array(rate * 2);
          for (let i = 0; i < x.length; i++) x[i] = Math.sin(2 * Math.PI * freq * i / rate);
          const parts = [];
          for (let i = 0, n = 1; i < x.length; i += n, n = (n * 7 + 13) % 3001 + 1) {
            parts.push(resampler.push(x.subarray(i, i + n)));
          }
          parts.push(resampler.flush());
          const y = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
          let at = 0;
          for (const p of parts) { y.set(p, at); at += p.length; }
          let error = 0;
          for (let j = 200; j < y.length - 200; j++) {
            const want = freq < 8000 ? Math.sin(2 * Math.PI * freq * j / 16000) : 0;
            error += (y[j] - want) ** 2;
          }
          rows.push([rate, freq, y.length, Math.sqrt(error / (y.length - 400))]);
        }
        return rows;
        """
    )
    for rate, freq, length, rms_error in rows:
        assert length == 32000, (rate, freq, length)
        assert rms_error < 1e-3, (rate, freq, rms_error)


def _save_screenshot(browser, path: Path) -> None:
    """The page as it is now, as a small PNG (a palette of 256 colours)."""
    from PIL import Image

    image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
