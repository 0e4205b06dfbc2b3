"""The example inputs: written in a forked child while the caller starts up, the same files as in-process."""

from __future__ import annotations

import os
import signal
import sys
import tempfile

import pytest

from floatalk.apps.examples import ExampleInChild, write_example
from support import fill, mount_tmpfs


def test_the_child_writes_the_example_write_example_writes(tmp_path):
    here = write_example(tmp_path / "here", seconds=1.5, seed=11, frames=False)
    child = ExampleInChild(tmp_path / "child", 1.5, 11).result()
    assert (child.emotion, child.identity) == (here.emotion, here.identity)
    assert child.image.parent == tmp_path / "child"
    assert child.image.read_bytes() == here.image.read_bytes()
    assert child.audio.read_bytes() == here.audio.read_bytes()
    assert child.frames.shape == here.frames.shape == (1, *here.frames.shape[1:])


def test_an_error_in_the_child_is_raised_by_result(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    pending = ExampleInChild(blocker / "example", 1.0, None)
    with pytest.raises(OSError):
        pending.result()


@pytest.mark.skipif(sys.platform != "linux", reason="the example is written in a child only where fork is the way")
def test_a_child_that_dies_is_a_sentence_not_a_hang(tmp_path):
    pending = ExampleInChild(tmp_path, 30.0, None)
    os.kill(pending._child.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="ended with code -9"):
        pending.result()


def test_a_full_disk_is_one_sentence_naming_the_file_in_the_child_too(tmp_path, monkeypatch, capsys):
    from floatalk.cli.main import main
    from floatalk.errors import UserInputError

    for disk in mount_tmpfs(tmp_path / "disk", "64k"):
        fill(disk)
        with pytest.raises(UserInputError, match=r"Cannot write '.*portrait\.png': the disk is full\."):
            write_example(disk / "here", seconds=1.0, frames=False)
        with pytest.raises(UserInputError, match=r"portrait\.png': the disk is full\."):
            ExampleInChild(disk / "child", 1.0, None).result()
        monkeypatch.setattr(tempfile, "tempdir", str(disk))  # where `floatalk demo` draws its example
        assert main(["demo", "--out", str(tmp_path / "demo.mp4"), "--seconds", "1", "--quiet"]) == 2
        assert "the disk is full" in capsys.readouterr().err
        assert not (tmp_path / "demo.mp4").exists()
        # Nothing half-written: the two folders hold no file, the demo's temporary folder is gone.
        assert sorted(str(p.relative_to(disk)) for p in disk.rglob("*")) == ["child", "filler", "here"]
