"""`floatalk serve`'s flags read without starting a server: the live sessions' bounds."""

from __future__ import annotations

import argparse

import pytest

from floatalk.cli.serve import add_live_flags, live_limits
from floatalk.errors import UserInputError


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_live_flags(parser)
    return parser.parse_args(list(flags))


def test_the_live_flags_set_the_live_limits() -> None:
    limits = live_limits(
        _args("--live-sessions", "2", "--live-idle-s", "5", "--live-max-s", "60", "--live-min-speed", "0")
    )
    assert (limits.max_sessions, limits.idle_s, limits.max_s, limits.min_speed) == (2, 5.0, 60.0, 0.0)
    assert live_limits(_args()).max_sessions == 1 and live_limits(_args("--live-sessions", "0")).max_sessions == 0


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("--live-sessions", "-1"), "--live-sessions must be from 0 to 64"),
        (("--live-idle-s", "0"), "must be positive"),
        (("--live-max-chunk-s", "-2"), "must be positive"),
        (("--live-min-speed", "20"), "--live-min-speed must be from 0 to 10"),
    ],
)
def test_a_live_flag_out_of_range_is_one_sentence(flags: tuple[str, ...], words: str) -> None:
    with pytest.raises(UserInputError, match=words):
        live_limits(_args(*flags))
