"""The web page in a real headless Chromium: `floatalk serve` runs as a subprocess on 127.0.0.1
(the API with the page at /ui), the browser loads the page (offline: every resource from the
server itself), fills in the example and a timeline row, presses Generate and gets a playable
video from the same queue the API serves.

Needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; or set
FLOATALK_CHROMIUM and FLOATALK_CHROMEDRIVER). Without them the test skips, except under CI (the
`CI` environment variable set), where it fails. With FLOATALK_UI_SCREENSHOT=path it also writes
its screenshot there (docs/ui_screenshot.png is made this way), and with FLOATALK_SCENE_SCREENSHOT=path
the Scene tab's (docs/scene_page.png).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

# whole commands or servers in child processes: the full suite (CI) runs them, the fast tier does not
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FLOATALK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLOATALK_CHROMEDRIVER", "/usr/bin/chromedriver")
START_DEADLINE_S = 120.0
VIDEO_DEADLINE_S = 180.0
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
    "--window-size=1280,1100",
    # Chromium's own test camera and microphone (a moving pattern and a beep), allowed without asking
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)


def _need_browser() -> None:
    """Skip (or, under CI, fail) when Chromium, its driver or Selenium is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(path) and os.access(path, os.X_OK))]
    missing += [f"the {name} package" for name in ("selenium", "gradio") if importlib.util.find_spec(name) is None]
    if missing:
        message = f"the browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so this is a failure")
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`floatalk serve` (the API with the page at /ui) in a subprocess on a free port of
    127.0.0.1; yields (page URL, data folder) once it answers."""
    import socket

    _need_browser()
    folder = tmp_path_factory.mktemp("ui")
    data = folder / "data"
    log = folder / "serve.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "floatalk.cli.main", "serve", "--port", str(port), "--data-dir", str(data)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            assert proc.poll() is None, f"floatalk serve exited early:\n{log.read_text(errors='replace')}"
            try:
                with urllib.request.urlopen(f"{base}/ui/", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"floatalk serve did not start in {START_DEADLINE_S} s"
            time.sleep(0.2)
        yield f"{base}/ui/", data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def browser():
    _need_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not look for a driver online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
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
        time.sleep(0.25)


def _fill_timeline_row(browser, row: int, values: list[str]) -> None:
    """Open the Timeline section and type `values` into the row's first cells (double-click edits a cell)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    section = browser.find_element(By.XPATH, "//button[.//span[normalize-space()='Timeline']]")
    browser.execute_script("arguments[0].scrollIntoView()", section)
    section.click()
    table = _until("the timeline table", 30, lambda: browser.find_elements(By.ID, "timeline"))[0]
    for col, value in enumerate(values):
        selector = f"[data-testid='cell-{row}-{col}']"
        cell = _until(f"timeline cell {row},{col}", 30, lambda s=selector: table.find_elements(By.CSS_SELECTOR, s))[0]
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
        ActionChains(browser).double_click(cell).perform()
        _until("the cell editor", 30, lambda: browser.switch_to.active_element.tag_name == "textarea")
        box = browser.switch_to.active_element
        box.send_keys(value)
        box.send_keys(Keys.TAB)
        _until(f"the cell to read {value!r}", 30, lambda c=cell, v=value: c.text.strip().startswith(v))


def _open(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(url)
    _until("the page to load", START_DEADLINE_S, lambda: browser.find_elements(By.ID, "generate"))


def _button(browser, scope: str, text: str):
    """The button inside `scope` whose text starts with `text`, or None."""
    from selenium.webdriver.common.by import By

    for button in browser.find_elements(By.CSS_SELECTOR, f"{scope} button"):
        if button.text.strip().startswith(text):
            return button
    return None


def _use_example(browser) -> None:
    """Press *Use the example* and wait until its photo and speech are in place."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "example").click()
    _until("the example photo", 60, lambda: browser.find_elements(By.CSS_SELECTOR, "#photo img[src]"))
    _until(
        "the example speech",
        60,
        lambda: (
            browser.find_elements(By.CSS_SELECTOR, "#speech audio")
            and not browser.find_elements(By.CSS_SELECTOR, "#speech [data-testid='upload-text']")
        ),
    )


def _generate(browser, url: str) -> tuple[str, str, list[str]]:
    """Press Generate and wait for the video; returns its URL, the job id and the progress labels seen."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "generate").click()
    progress: list[str] = []

    def video_src() -> str | None:
        found = browser.find_elements(By.CSS_SELECTOR, "#video video")
        if found and found[0].get_attribute("src"):
            return found[0].get_attribute("src")
        text = browser.find_element(By.ID, "video").text
        if "Job " in text and "%" in text:
            progress.append(text)  # the progress bar's label over the video: "Job ...: <stage>. - NN%"
        return None

    src = _until("the video", VIDEO_DEADLINE_S, video_src)
    assert src.startswith(url) and src.endswith(".mp4")
    with urllib.request.urlopen(src, timeout=60) as response:
        assert response.read(12)[4:8] == b"ftyp"  # an MP4 file the browser can play and download
    job = browser.find_element(By.CSS_SELECTOR, "#job textarea")
    job_id = _until("the job id", 30, lambda: job.get_attribute("value"))
    assert browser.find_element(By.ID, "status").text.startswith(f"Job {job_id}: done")
    return src, job_id, progress


@pytest.mark.slow
def test_the_example_renders_a_video_in_a_real_browser(server, browser) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By

    from floatalk.apps.queue import JobQueue
    from floatalk.fileio import atomic_write

    url, data = server
    _open(browser, url)
    outside = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith('http://127.0.0.1') && !n.startsWith('data:') && !n.startsWith('blob:'))"
    )
    assert outside == [], f"the page fetched resources from elsewhere: {outside}"
    live = browser.find_element(By.CSS_SELECTOR, "#live-link a")  # the live page, linked under the title
    assert live.get_attribute("href") == url.removesuffix("/ui/") + "/live/"

    browser.find_element(By.ID, "generate").click()  # nothing given yet: one sentence, nothing queued
    body = browser.find_element(By.TAG_NAME, "body")
    _until("the missing-photo message", 60, lambda: "Add a portrait photo first" in body.text)
    for close in browser.find_elements(By.CSS_SELECTOR, "[data-testid='toast-close']"):
        close.click()

    _use_example(browser)
    assert not browser.find_element(By.CSS_SELECTOR, "#crop input").is_selected()  # the example is uncropped
    _fill_timeline_row(browser, 0, ["0", "1", "happy"])

    _src, job_id, progress = _generate(browser, url)
    assert progress, "no progress was shown while the job ran"
    record = JobQueue(data).get(job_id)  # the page's job is in the server's queue
    assert record is not None and record.state == "done" and record.options["crop"] is False
    api = url.removesuffix("/ui/")  # and the API answers for it, video included
    with urllib.request.urlopen(f"{api}/v1/jobs/{job_id}", timeout=30) as answer:
        assert json.load(answer)["state"] == "done"
    with urllib.request.urlopen(f"{api}/v1/jobs/{job_id}/video", timeout=30) as answer:
        assert answer.headers["content-type"] == "video/mp4" and len(answer.read()) > 1000
    segments = [{"start": 0.0, "end": 1.0, "emotion": "happy"}]
    assert record.options["timeline"] == {"segments": segments, "transition": 0.4}  # the Ramp control's default

    browser.execute_script("window.scrollTo(0, 0)")
    png = browser.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    assert shot.width >= 1000 and shot.height >= 700
    colours = shot.resize((64, 64)).getcolors(64 * 64)
    assert colours is not None and len(colours) > 50  # a rendered page, not a blank one
    target = os.environ.get("FLOATALK_UI_SCREENSHOT")
    if target:
        atomic_write(target, lambda tmp: tmp.write_bytes(png))


@pytest.mark.slow
def test_a_webcam_photo_and_a_microphone_recording_make_a_video(server, browser) -> None:
    from selenium.webdriver.common.by import By

    from floatalk.apps.queue import JobQueue

    url, data = server
    _open(browser, url)
    browser.find_element(By.CSS_SELECTOR, "#photo button[aria-label='Capture from camera']").click()
    _until("the webcam's access button", 60, lambda: _button(browser, "#photo", "Click to Access Webcam")).click()
    _until(
        "the capture button",
        60,
        lambda: browser.find_elements(By.CSS_SELECTOR, "#photo button[aria-label='capture photo']"),
    )[0].click()
    _until("the webcam photo", 60, lambda: browser.find_elements(By.CSS_SELECTOR, "#photo img[src]"))

    browser.find_element(By.CSS_SELECTOR, "#speech button[aria-label='Record audio']").click()
    _until("the record button", 60, lambda: _button(browser, "#speech", "Record")).click()
    _until("2 s of recording", 60, lambda: "0:02" in browser.find_element(By.ID, "speech").text)
    _until("the stop button", 60, lambda: _button(browser, "#speech", "Stop")).click()
    _until(
        "the recording",
        60,
        lambda: browser.find_elements(By.CSS_SELECTOR, "#speech audio") and not _button(browser, "#speech", "Stop"),
    )

    crop = browser.find_element(By.CSS_SELECTOR, "#crop input")
    assert crop.is_selected()  # cropping is on by default, and the test camera shows a pattern, not a face
    browser.find_element(By.ID, "generate").click()
    status = browser.find_element(By.ID, "status")
    failed = _until("the job to fail", VIDEO_DEADLINE_S, lambda: "failed: " in status.text and status.text)
    reason = failed.split("failed: ", 1)[1]
    assert "face" in reason.lower() and "\n" not in reason
    body = browser.find_element(By.TAG_NAME, "body")
    _until("the error message", 60, lambda: body.text.count(reason) >= 2)  # beside the video and in the error box
    for close in browser.find_elements(By.CSS_SELECTOR, "[data-testid='toast-close']"):
        close.click()

    crop.click()  # animate the whole frame instead
    _src, job_id, _progress = _generate(browser, url)
    record = JobQueue(data).get(job_id)
    assert record is not None and record.state == "done" and record.options["crop"] is False
    folder = data / "jobs" / job_id
    assert {p.stem for p in folder.iterdir()} == {"image", "audio", "video"}


@pytest.mark.slow
def test_a_head_motion_video_uploaded_on_the_page_goes_with_the_job(server, browser, tmp_path) -> None:
    import numpy as np
    from selenium.webdriver.common.by import By

    from floatalk.apps.examples import write_example
    from floatalk.apps.queue import JobQueue
    from floatalk.io.video import VideoWriter

    url, data = server
    mover = tmp_path / "mover.mp4"  # a synthetic face sliding right
    frame = write_example(tmp_path / "example", seconds=0.5).frames[0]
    with VideoWriter(mover, fps=25) as w:
        for dx in range(0, 20, 2):
            w.write(np.roll(frame, dx, axis=1))
    _open(browser, url)
    _use_example(browser)
    browser.find_element(By.XPATH, "//button[.//span[normalize-space()='Head motion from a video']]").click()
    upload = _until(
        "the video upload", 30, lambda: browser.find_elements(By.CSS_SELECTOR, "#pose_video input[type='file']")
    )
    upload[0].send_keys(str(mover))
    _until("the uploaded video", 60, lambda: browser.find_elements(By.CSS_SELECTOR, "#pose_video video[src]"))
    browser.find_element(By.CSS_SELECTOR, "#blink_from_video input").click()
    _src, job_id, _progress = _generate(browser, url)
    record = JobQueue(data).get(job_id)
    assert record is not None and record.state == "done"
    assert record.options["pose_video"].startswith("pose_video.") and record.options["blink_from_video"] is True


def _upload(browser, elem_id: str, path: Path, shown: str) -> None:
    """Send `path` to the upload of component `elem_id` and wait until it shows `shown` (a CSS selector inside it)."""
    from selenium.webdriver.common.by import By

    upload = _until(
        f"the {elem_id} upload", 30, lambda: browser.find_elements(By.CSS_SELECTOR, f"#{elem_id} input[type='file']")
    )
    upload[0].send_keys(str(path))
    _until(f"the uploaded {elem_id}", 60, lambda: browser.find_elements(By.CSS_SELECTOR, f"#{elem_id} {shown}"))


@pytest.mark.slow
def test_a_scene_is_made_on_the_scene_tab(server, browser, scene_files) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from floatalk.apps.queue import JobQueue

    url, data = server
    _open(browser, url)
    browser.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Scene']").click()
    detector = _until("the detector", 30, lambda: browser.find_elements(By.CSS_SELECTOR, "#scene_detector input"))[0]
    detector.click()
    detector.send_keys(Keys.CONTROL, "a")
    detector.send_keys("haar", Keys.ENTER)  # the drawn faces of the test photo are found by Haar cascades
    _upload(browser, "scene_photo", scene_files / "photo.png", "img[src]")
    found = browser.find_element(By.ID, "scene_found")
    _until("the faces found", 60, lambda: "Found 2 faces" in found.text)
    assert browser.find_elements(By.CSS_SELECTOR, "#scene_faces img[src]")  # the photo, framed and numbered
    _upload(browser, "scene_voice1", scene_files / "ann.wav", "audio")
    _upload(browser, "scene_voice2", scene_files / "bob.wav", "audio")
    browser.find_element(By.ID, "scene_generate").click()

    def video_src() -> str | None:
        found = browser.find_elements(By.CSS_SELECTOR, "#scene_video video")
        return found[0].get_attribute("src") if found and found[0].get_attribute("src") else None

    src = _until("the scene's video", VIDEO_DEADLINE_S, video_src)
    with urllib.request.urlopen(src, timeout=60) as response:
        assert response.read(12)[4:8] == b"ftyp"
    job_id = browser.find_element(By.CSS_SELECTOR, "#scene_job textarea").get_attribute("value")
    assert browser.find_element(By.ID, "scene_status").text.startswith(f"Job {job_id}: done")
    record = JobQueue(data).get(job_id)  # the API's queue holds the scene as the API would have queued it
    assert record.state == "done" and record.options["speakers"] == [
        {"face": 1, "audio": "voice1"},
        {"face": 2, "audio": "voice2"},
    ]
    assert {p.stem for p in (data / "jobs" / job_id).iterdir()} == {"image", "speaker1", "speaker2", "video"}
    target = os.environ.get("FLOATALK_SCENE_SCREENSHOT")
    if target:
        from floatalk.fileio import atomic_write

        browser.execute_script("window.scrollTo(0, 0)")
        png = browser.get_screenshot_as_png()
        atomic_write(target, lambda tmp: tmp.write_bytes(png))
