"""`floatalk batch`: jobs files (JSONL, CSV) read line by line with reasons for bad lines, runs
that resume after a kill doing every job once, and the same on a local Ray cluster kept on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from floatalk.apps.batch import REPORT_NAME, BatchEntry, Outcome, read_jobs, run_batch
from floatalk.cli.main import main
from floatalk.errors import UserInputError

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 120.0


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    """A folder with a (tiny, fake) photo and recording: enough for reading jobs files."""
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "face.png").write_bytes(b"not read by read_jobs")
    (tmp_path / "media" / "talk.wav").write_bytes(b"not read by read_jobs")
    return tmp_path


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_jobs_take_paths_from_the_jobs_folder(inputs: Path) -> None:
    jobs = _write_lines(
        inputs / "jobs.jsonl",
        [
            "# a comment, then a blank line",
            "",
            '{"image": "media/face.png", "audio": "media/talk.wav", "emotion": "happy", "no-blink": true}',
            '{"image": "media/face.png", "audio": "media/talk.wav", "name": "second", "seed": 4, "fps": 30}',
            '{"image": "media/face.png", "audio": "media/talk.wav", "name": "third.mkv", "paste_back": true}',
        ],
    )
    first, second, third = read_jobs(jobs)
    assert [e.line for e in (first, second, third)] == [3, 4, 5]
    assert [e.name for e in (first, second, third)] == ["face-3.mp4", "second.mp4", "third.mkv"]
    assert first.error is None and first.image == inputs / "media" / "face.png"
    assert first.audio == inputs / "media" / "talk.wav"
    assert first.job.generate.emotion == "happy" and first.job.generate.blink is False
    assert second.job.generate.seed == 4 and second.job.fps == 30
    assert third.job.paste_back is True


def test_jobs_are_read_from_any_working_folder(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_lines(inputs / "jobs.jsonl", ['{"image": "media/face.png", "audio": "media/talk.wav"}'])
    monkeypatch.chdir(inputs / "media")
    (entry,) = read_jobs("../jobs.jsonl")
    assert entry.error is None and entry.image.is_absolute() and entry.image.is_file()


def test_csv_cells_take_the_type_of_their_option(inputs: Path) -> None:
    jobs = _write_lines(
        inputs / "jobs.csv",
        [
            "image,audio,name,seed,a-cfg-scale,crop,blink,emotion,fps",
            "media/face.png,media/talk.wav,one,3,2.5,false,no,sad,",
            "media/face.png,media/talk.wav,,,,TRUE,,,30",
            ",,,,,,,,",
            "media/face.png,media/talk.wav,bad-seed,x,,,,,",
            "media/face.png,media/talk.wav,bad-bool,,,maybe,,,",
        ],
    )
    one, two, bad_seed, bad_bool = read_jobs(jobs)
    assert one.error is None and one.name == "one.mp4"
    g = one.job.generate
    assert (g.seed, g.a_cfg_scale, g.crop, g.blink, g.emotion) == (3, 2.5, False, False, "sad")
    assert one.job.fps == 25  # the empty cell is absent: the default
    assert two.error is None and two.name == "face-3.mp4" and two.job.generate.crop is True and two.job.fps == 30
    assert bad_seed.line == 5 and "'seed' must be a whole number from 0 to 4294967295 (got 'x')" in bad_seed.error
    assert bad_bool.line == 6 and "'crop' must be true or false (got 'maybe')" in bad_bool.error


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"image": "media/face.png", "audio": ', "not valid JSON"),
        ('["media/face.png", "media/talk.wav"]', "must be a JSON object"),
        ('{"audio": "media/talk.wav"}', "has no 'image'"),
        ('{"image": "media/nobody.png", "audio": "media/talk.wav"}', "does not exist"),
        ('{"image": "media/face.png", "audio": "media/talk.wav", "colour": 1}', "Unknown option 'colour'"),
        ('{"image": "media/face.png", "audio": "media/talk.wav", "nfe": 1}', "'nfe' must be a whole number from 2"),
        ('{"image": "media/face.png", "audio": "media/talk.wav", "name": "../up"}', "plain file name"),
        ('{"image": "media/face.png", "audio": "media/talk.wav", "pose_video": "none.mp4"}', "none.mp4"),
    ],
)
def test_a_bad_line_is_a_failed_entry_with_its_reason(inputs: Path, line: str, words: str) -> None:
    good = '{"image": "media/face.png", "audio": "media/talk.wav"}'
    bad, fine = read_jobs(_write_lines(inputs / "jobs.jsonl", [line, good]))
    assert bad.line == 1 and words in bad.error and "\n" not in bad.error
    assert fine.error is None


def test_two_lines_writing_one_output_are_refused_up_front(inputs: Path, capsys: pytest.CaptureFixture) -> None:
    jobs = _write_lines(
        inputs / "jobs.jsonl",
        [
            '{"image": "media/face.png", "audio": "media/talk.wav", "name": "clip"}',
            '{"image": "media/face.png", "audio": "media/talk.wav", "name": "other"}',
            '{"image": "media/face.png", "audio": "media/talk.wav", "name": "Clip.mp4"}',
        ],
    )
    with pytest.raises(UserInputError, match="Lines 1 and 3 would both write"):
        read_jobs(jobs)
    assert main(["batch", str(jobs), "--out", str(inputs / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Lines 1 and 3" in err and len(err.splitlines()) == 1
    assert not (inputs / "out").exists()

    # A line that cannot run writes nothing, so its name collides with nobody.
    bad = '{"image": "media/face.png", "audio": "media/talk.wav", "name": "clip", "colour": 1}'
    entries = read_jobs(
        _write_lines(
            inputs / "jobs.jsonl", [bad, '{"image": "media/face.png", "audio": "media/talk.wav", "name": "clip"}']
        )
    )
    assert [e.error is None for e in entries] == [False, True]


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("missing.jsonl", None, "does not exist"),
        ("jobs.txt", "image,audio\n", "JSON Lines (.jsonl) or CSV"),
        ("jobs.json", '[{"image": "a.png", "audio": "a.wav"}]', "JSON Lines (.jsonl) or CSV"),
        ("empty.jsonl", "\n# nothing\n", "holds no jobs"),
        ("noheader.csv", "media/face.png,media/talk.wav\n", "first row naming the columns"),
    ],
)
def test_an_unusable_jobs_file_is_one_sentence(inputs: Path, name: str, text: str | None, words: str) -> None:
    if text is not None:
        (inputs / name).write_text(text)
    with pytest.raises(UserInputError, match=re.escape(words)):
        read_jobs(inputs / name)


def test_actors_without_ray_is_a_user_mistake(inputs: Path, capsys: pytest.CaptureFixture) -> None:
    jobs = _write_lines(inputs / "jobs.jsonl", ['{"image": "media/face.png", "audio": "media/talk.wav"}'])
    assert main(["batch", str(jobs), "--out", str(inputs / "out"), "--actors", "2"]) == 2
    assert "--actors is for --ray runs" in capsys.readouterr().err


def test_a_ray_address_where_nothing_answers_is_one_sentence(inputs: Path, capsys: pytest.CaptureFixture) -> None:
    import socket

    from floatalk.apps.ray_runner import is_loopback

    assert is_loopback("127.0.0.1:6379") and is_loopback("ray://localhost:10001") and not is_loopback("10.0.0.5:6379")
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    jobs = _write_lines(inputs / "jobs.jsonl", ['{"image": "media/face.png", "audio": "media/talk.wav"}'])
    assert main(["batch", str(jobs), "--out", str(inputs / "out"), f"--ray=127.0.0.1:{port}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"Nothing answers at the Ray address '127.0.0.1:{port}'" in err and len(err.splitlines()) == 1


def test_an_interrupted_batch_reports_what_did_not_run(inputs: Path) -> None:
    lines = [f'{{"image": "media/face.png", "audio": "media/talk.wav", "name": "v{i}"}}' for i in range(3)]
    jobs = _write_lines(inputs / "jobs.jsonl", lines)
    out = inputs / "out"

    def runner(entries: list[BatchEntry], folder: Path, finished) -> None:
        (folder / entries[0].name).write_bytes(b"video")
        finished(Outcome(entries[0].line, entries[0].name, "done", seconds=1.0))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(jobs, out, runner)
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["complete"] is False
    assert [j["status"] for j in report["jobs"]] == ["done", "not run", "not run"]

    ran: list[str] = []
    result = run_batch(jobs, out, lambda entries, folder, finished: ran.extend(e.name for e in entries))
    assert ran == ["v1.mp4", "v2.mp4"]  # v0 exists, so it is not given to the runner again
    assert result.outcomes[0].status == "skipped"


def test_a_folder_takes_one_run_at_a_time_and_stale_temporaries_go(inputs: Path, capsys) -> None:
    import fcntl

    jobs = _write_lines(inputs / "jobs.jsonl", ['{"image": "media/face.png", "audio": "media/talk.wav", "name": "x"}'])
    out = inputs / "out"
    out.mkdir()
    (out / ".x.mp4.partial-k1ll3d").write_bytes(b"half a video")  # left by a killed run
    (out / ".notes.txt.partial-1").write_bytes(b"not ours")
    with open(out / ".floatalk-batch.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the folder
        assert main(["batch", str(jobs), "--out", str(out), "--quiet"]) == 2
        assert "Another 'floatalk batch' is writing into" in capsys.readouterr().err
    assert (out / ".x.mp4.partial-k1ll3d").exists()  # untouched while the other run held the folder

    seen: list[list[str]] = []
    run_batch(jobs, out, lambda entries, folder, finished: seen.append(sorted(p.name for p in folder.iterdir())))
    assert ".x.mp4.partial-k1ll3d" not in seen[0] and ".notes.txt.partial-1" in seen[0]


# -- real runs with the bundled model ----------------------------------------------------------


def test_a_photo_without_a_face_or_a_bug_fails_only_its_own_job(bundled_pipe, example, tmp_path, monkeypatch) -> None:
    import numpy as np
    from PIL import Image

    from floatalk.apps import jobs
    from floatalk.apps.batch import run_entry
    from floatalk.apps.jobs import parse_options

    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((128, 128, 3), 120, np.uint8)).save(wall)
    entry = BatchEntry(1, "wall.mp4", image=wall, audio=example.audio, job=parse_options({}))
    outcome = run_entry(bundled_pipe, entry, tmp_path)
    assert outcome.status == "failed" and "face" in outcome.reason.lower() and "\n" not in outcome.reason
    assert not (tmp_path / "wall.mp4").exists()

    def broken(*args, **kwargs):
        raise RuntimeError("decoder exploded\nsecond line")

    monkeypatch.setattr(jobs, "run_job", broken)
    outcome = run_entry(bundled_pipe, entry, tmp_path)
    assert outcome.status == "failed" and outcome.reason.startswith("Internal error (RuntimeError: decoder exploded")
    assert "\n" not in outcome.reason and "Traceback" in outcome.detail


@pytest.fixture(scope="module")
def six_jobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A jobs file of 6 lines over 1 s example clips: 5 good jobs and one with an unknown option (line 3)."""
    from floatalk.apps.examples import write_example

    folder = tmp_path_factory.mktemp("batch")
    write_example(folder / "ex", seconds=1.0)
    good = '{"image": "ex/portrait.png", "audio": "ex/speech.wav", "crop": false, "seed": %d}'
    lines = [good % 1, good % 2, '{"image": "ex/portrait.png", "audio": "ex/speech.wav", "colour": "red"}']
    lines += [good % 4, good % 5, good % 6]
    return _write_lines(folder / "jobs.jsonl", lines)


GOOD_LINES = [1, 2, 4, 5, 6]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "floatalk.cli.main", "batch", *args]


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _videos(out: Path) -> dict[str, tuple[int, int]]:
    """name -> (inode, mtime_ns) of the finished videos."""
    if not out.is_dir():
        return {}
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.mp4")}


def _start_and_stop(args: list[str], out: Path, sig: int, while_running=None) -> tuple[subprocess.Popen, dict, str]:
    """Start `floatalk batch`, wait until 2 videos are finished, send `sig`; returns the process,
    the videos the stopped run left and its stderr."""
    proc = subprocess.Popen(_cli(*args), env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(_videos(out)) < 2:
            assert proc.poll() is None, f"batch ended early ({proc.returncode}): {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no 2 videos in time"
            time.sleep(0.1)
        if while_running is not None:
            while_running(proc.pid)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # what the stopped run left: a job may still finish between the signal and the stop (its
    # video is then complete, being renamed into place only when written)
    return proc, _videos(out), err


def _check_rerun(out: Path, before: dict, report: dict) -> None:
    """Every good job done once: those finished before the stop are skipped and untouched, the
    others done now; the bad line failed with its reason; no temporary file is left."""
    status = {j["line"]: j for j in report["jobs"]}
    assert report["complete"] is True
    assert status[3]["status"] == "failed" and "Unknown option 'colour'" in status[3]["reason"]
    names = {line: status[line]["output"] for line in GOOD_LINES}
    assert set(names.values()) == set(_videos(out))
    for line, name in names.items():
        expected = "skipped" if name in before else "done"
        assert status[line]["status"] == expected, (line, status[line])
    after = _videos(out)
    assert {n: after[n] for n in before} == before  # not rewritten
    assert report["counts"] == {"done": 5 - len(before), "skipped": len(before), "failed": 1}
    assert [p.name for p in out.iterdir() if ".partial-" in p.name] == []


@pytest.mark.slow
def test_a_killed_batch_resumes_doing_every_job_once(six_jobs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, before, _ = _start_and_stop([str(six_jobs), "--out", str(out), "--quiet"], out, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and len(before) >= 2

    rerun = subprocess.run(
        _cli(str(six_jobs), "--out", str(out)), env=_env(), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 3, rerun.stderr
    _check_rerun(out, before, json.loads((out / REPORT_NAME).read_text()))
    assert "line 3 (portrait-3.mp4): Unknown option 'colour'" in rerun.stderr


def _tree(root: int) -> set[int]:
    """`root` and every process below it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = {root}, [root]
    while todo:
        parent = todo.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        todo += children
    return found


def _sockets(pids: set[int]) -> list[tuple[str, str, str]]:
    """(state, local address, peer address) of the TCP sockets these processes hold."""
    listing = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, check=True).stdout
    rows = []
    for row in listing.splitlines():
        if {int(p) for p in re.findall(r"pid=(\d+)", row)} & pids:
            fields = row.split()
            rows.append((fields[0], fields[3], fields[4]))
    return rows


def _loopback(address: str) -> bool:
    return address.rsplit(":", 1)[0].strip("[]") in ("127.0.0.1", "::1", "::ffff:127.0.0.1")


@pytest.mark.slow
def test_a_ray_batch_on_two_actors_stays_on_loopback_and_resumes(six_jobs: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    if subprocess.run(["ss", "-V"], capture_output=True).returncode != 0:
        pytest.skip("needs ss (iproute2) to see the sockets")
    out = tmp_path / "out"
    seen: dict[str, list] = {}

    def look(pid: int) -> None:
        tree = _tree(pid)
        seen["tree"] = sorted(tree)
        seen["sockets"] = _sockets(tree)

    args = [str(six_jobs), "--out", str(out), "--ray", "--actors", "2", "--quiet"]
    proc, before, err = _start_and_stop(args, out, signal.SIGINT, while_running=look)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("floatalk batch: interrupted; finished videos are kept")
    assert [p.name for p in out.iterdir() if ".partial-" in p.name] == []
    # Ray's servers (gcs, raylet, the actors, agents) all ran under the batch process, on 127.0.0.1 only.
    listening = [s for s in seen["sockets"] if s[0] == "LISTEN"]
    assert len(seen["tree"]) >= 5 and len(listening) >= 4, seen
    assert all(_loopback(local) and (state == "LISTEN" or _loopback(peer)) for state, local, peer in seen["sockets"])
    deadline = time.monotonic() + DEADLINE_S
    while any(Path(f"/proc/{pid}").exists() for pid in seen["tree"]):
        assert time.monotonic() < deadline, "Ray processes outlived the batch"
        time.sleep(0.2)

    rerun = subprocess.run(_cli(*args), env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 3, rerun.stderr
    _check_rerun(out, before, json.loads((out / REPORT_NAME).read_text()))
