"""Command-line flags generated from (nested) option dataclasses, one flag per field.

A field ``max_num_features`` becomes ``--max-num-features``; booleans get ``--x / --no-x``;
``int | None`` fields accept ``none``. Flags of nested dataclasses are flat, so field names
must be unique across the tree (checked here). A flag's help is its field's entry in the class
docstring (``name : text`` or ``name, other : text``, continued on deeper-indented lines; see
:func:`field_docs`), led by its stage (``verification: ...``) and followed by the default.
Only flags the user gave override the dataclasses' own defaults, so the defaults live in one
place: the dataclasses.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing


def _flag(name: str) -> str:
    return "--" + (name if name.isupper() else name.replace("_", "-"))


def _parser_for(tp):
    """(argparse type callable, metavar, is_bool) for a field annotation."""
    args = typing.get_args(tp)
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), tp) if optional else tp
    if base is bool:
        return None, None, True
    conv = {int: int, float: float, str: str}.get(base)
    if conv is None:
        raise TypeError(f"no command-line form for fields of type {tp!r}")

    def parse(text: str):
        if optional and text.lower() == "none":
            return None
        try:
            return conv(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {base.__name__}{' or none' if optional else ''}, got {text!r}")

    return parse, base.__name__.upper(), False


_ENTRY = re.compile(r"([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+:\s+(.*)")


def field_docs(cls) -> dict[str, str]:
    """Field name -> its description in the docstring of ``cls``: the entries ``name : text`` and
    ``a, b : text`` (one text for both) at the docstring's left margin, each continued by the
    more deeply indented lines after it, joined into one line without reST markup."""
    docs: dict[str, str] = {}
    names: list[str] = []
    for line in inspect.cleandoc(cls.__doc__ or "").splitlines():
        entry = _ENTRY.fullmatch(line)
        if entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            for n in names:
                docs[n] = entry.group(2)
        elif names and line[:1].isspace():
            for n in names:
                docs[n] += " " + line.strip()
        else:  # a blank line or prose at the margin ends the entry
            names = []
    return {n: _plain(text) for n, text in docs.items()}


def _plain(text: str) -> str:
    """``text`` without reST roles and literals (``x``, :func:`x`), in one line."""
    text = re.sub(r":\w+:`~?\.?([^`]+)`", r"\1", text)
    return " ".join(text.replace("``", "").split())


def _help(path: tuple, doc: str | None, default) -> str:
    """'<stage>: <doc> (default: X)', with '%' escaped for argparse's formatting."""
    stage = ".".join(path[:-1])
    text = f"{stage}: {doc}" if stage and doc else doc
    return ((f"{text} " if text else "") + f"(default: {default})").replace("%", "%%")


def _walk(cls, path=()):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _walk(tp, path + (f.name,))
        else:
            yield path + (f.name,), tp, f


def _doc(cls, path: tuple) -> str | None:
    """The docstring entry of the field at ``path`` below ``cls``."""
    for name in path[:-1]:
        cls = typing.get_type_hints(cls)[name]
    return field_docs(cls).get(path[-1])


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, *, title: str | None = None) -> list[tuple]:
    """Add one flag per leaf field of dataclass ``cls`` (recursing into nested dataclasses);
    returns the field paths, for :func:`dataclass_from_args`."""
    paths = []
    seen: dict[str, tuple] = {}
    groups: dict[tuple, argparse._ArgumentGroup] = {}
    for path, tp, f in _walk(cls):
        flag = _flag(path[-1])
        if flag in seen:
            raise ValueError(f"option {'.'.join(path)} and {'.'.join(seen[flag])} would share the flag {flag}")
        seen[flag] = path
        group = groups.setdefault(path[:-1], parser.add_argument_group(f"{'.'.join(path[:-1]) or title or 'options'}"))
        conv, metavar, is_bool = _parser_for(tp)
        if f.default is not dataclasses.MISSING:
            default = f.default
        else:  # a computed default (e.g. num_threads: the number of cores)
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        help_text = _help(path, _doc(cls, path), default)
        dest = "opt__" + "__".join(path)
        if is_bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=conv, metavar=metavar, default=argparse.SUPPRESS, help=help_text)
        paths.append(path)
    return paths


def dataclass_from_args(cls, args: argparse.Namespace, base=None):
    """An instance of ``cls`` (default values, or ``base``) with the flags the user gave applied.
    Invalid values raise the dataclass's own ``ValueError``, reworded to name the flag that
    caused it (``--max-error-px must be ...`` rather than ``VerificationOptions.max_error_px ...``)."""
    obj = cls() if base is None else base
    given: dict[tuple, object] = {}
    for key, value in vars(args).items():
        if key.startswith("opt__"):
            given[tuple(key[5:].split("__"))] = value
    try:
        return _apply(obj, given)
    except ValueError as exc:
        raise ValueError(_naming_the_flag(obj, given, str(exc))) from None


def _naming_the_flag(obj, given: dict[tuple, object], message: str) -> str:
    """``message`` with the flag that makes it fail in front: the flags are applied one at a time
    until validation fails (the defaults are valid, so the last one applied is the culprit). A
    leading field name (``max_error_px``, ``VerificationOptions.max_error_px:``) becomes the flag."""
    applied: dict[tuple, object] = {}
    for path, value in given.items():
        applied[path] = value
        try:
            _apply(obj, applied)
        except ValueError:
            flag = _flag(path[-1])
            lead = re.match(rf"(?:\w+\.)?{re.escape(path[-1])}(?=[\s:])", message)
            if lead:
                return flag + message[lead.end():]
            return f"{flag} {'none' if value is None else value}: {message}"
    return message


def _apply(obj, given: dict[tuple, object]):
    changes = {}
    for f in dataclasses.fields(obj):
        sub = {p[1:]: v for p, v in given.items() if p[0] == f.name and len(p) > 1}
        if sub:
            changes[f.name] = _apply(getattr(obj, f.name), sub)
        elif (f.name,) in given:
            changes[f.name] = given[(f.name,)]
    return dataclasses.replace(obj, **changes) if changes else obj
