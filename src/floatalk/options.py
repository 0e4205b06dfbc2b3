"""Options as frozen dataclasses whose fields carry their own help: one source for the
library's defaults, the command line's flags and the docs.

A field made with `option(default, "help", ...)` becomes the flag `--field-name` (underscores
become dashes). The type comes from the annotation: `bool` fields are on/off flags
(`--name` / `--no-name`), `int | None` style fields accept a number and default to None.
A field whose default is itself an options dataclass (`option(LoopSettings(lr=2e-3), "training
loop")`) adds that class's flags as an argument group, with the defaults of that instance; its
help is the group's title. This module imports nothing heavy, so building a parser stays fast
(`floatalk --help`).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any

__all__ = ["add_flags", "flag_name", "from_args", "option", "option_fields"]


def option(
    default: Any,
    help: str,
    *,
    metavar: str | None = None,
    choices: Sequence[Any] | None = None,
    flag: str | None = None,
    cli: bool = True,
    lower: bool = False,
    required: bool = False,
) -> Any:
    """A dataclass field with the metadata `add_flags` turns into a command-line flag.

    help: one phrase for `--help` (the default is appended); metavar, choices: as in argparse;
    flag: the flag's name when it is not `--field-name`; cli=False keeps the field off the
    command line (set from Python only); lower: lower-case the given text (names of choices);
    required: the command line must give the flag (its `default` then serves Python callers only).
    """
    meta = {"help": help, "metavar": metavar, "choices": choices, "flag": flag, "cli": cli, "lower": lower}
    meta["required"] = required
    return dataclasses.field(default=default, metadata={"floatalk": meta})


def option_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass `cls` that are command-line flags."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("floatalk", {}).get("cli", False)]


def flag_name(f: dataclasses.Field) -> str:
    """'--a-cfg-scale' for field a_cfg_scale (or the field's own `flag`)."""
    return f.metadata["floatalk"]["flag"] or "--" + f.name.replace("_", "-")


def _base_type(cls: type, f: dataclasses.Field) -> tuple[type, bool]:
    """(the annotation's type without None, whether None is allowed)."""
    hints = typing.get_type_hints(cls)
    hint = hints[f.name]
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _show_default(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_group(value: Any) -> bool:
    """Whether a field's default is an options dataclass instance (its fields become a flag group)."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    exclude: Sequence[str] = (),
    defaults: Any = None,
) -> None:
    """Add one flag per option field of dataclass `cls` (except those named in `exclude`); a field
    whose default is an options dataclass adds that class's flags as a group. `defaults`: an
    instance of `cls` whose values are the flags' defaults (default: the fields' own)."""
    for f in option_fields(cls):
        if f.name in exclude:
            continue
        meta = f.metadata["floatalk"]
        default = f.default if defaults is None else getattr(defaults, f.name)
        if _is_group(default):
            group = parser.add_argument_group(meta["help"]) if isinstance(parser, argparse.ArgumentParser) else parser
            add_flags(group, type(default), exclude, default)
            continue
        kind, _ = _base_type(cls, f)
        name = flag_name(f)
        helptext = meta["help"]
        if kind is bool:
            parser.add_argument(
                name, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=helptext
            )
            continue
        required = meta["required"]
        if default is not None and default != "" and not required and "(default" not in helptext:
            helptext = f"{helptext} (default {_show_default(default)})"
        convert = str.lower if meta["lower"] else kind
        parser.add_argument(
            name,
            dest=f.name,
            type=convert,
            default=default,
            required=required,
            metavar=meta["metavar"] or (None if meta["choices"] else f.name.upper()),
            choices=meta["choices"],
            help=helptext,
        )


def _values(cls: type, args: argparse.Namespace, defaults: Any = None) -> dict[str, Any]:
    """The values of `cls`'s option fields that the parsed flags give (a group: a copy of its
    default instance with its flags' values)."""
    values = {}
    for f in option_fields(cls):
        default = f.default if defaults is None else getattr(defaults, f.name)
        if _is_group(default):
            values[f.name] = dataclasses.replace(default, **_values(type(default), args, default))
        elif hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return values


def from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build `cls` from the parsed flags (fields not on the command line keep their defaults;
    a group field is its default instance with the flags' values)."""
    values = _values(cls, args)
    values.update(overrides)
    return cls(**values)
