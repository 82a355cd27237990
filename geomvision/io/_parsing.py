"""Shared helpers of the file readers: located error messages and fast token conversion.

Every malformed-file error is a ``ValueError`` whose message starts with the file, then where
(``line 12`` for text, ``record 3 (byte 1208)`` for binary), then what is wrong.
Numbers are converted in bulk (one numpy call per block); only when that fails is the block
scanned token by token to find and name the offending line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np


def file_error(path: str | os.PathLike, where: str | None, what: str) -> ValueError:
    """``ValueError("<path>: <where>: <what>")`` (``where`` omitted when None)."""
    loc = f"{os.fspath(path)}: {where}: " if where else f"{os.fspath(path)}: "
    return ValueError(loc + what)


def read_text(path: str | os.PathLike) -> str:
    """The file decoded as UTF-8 (a clear ValueError when it is not text)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ValueError(f"{os.fspath(path)}: file not found") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise file_error(path, f"line {line}", "not UTF-8 text (is this a binary file?)") from None


def data_lines(text: str) -> tuple[list[str], list[int]]:
    """Non-empty lines not starting with ``#`` (stripped), with their 1-based line numbers."""
    lines, numbers = [], []
    for n, line in enumerate(text.split("\n"), start=1):
        s = line.strip()
        if s and s[0] != "#":
            lines.append(s)
            numbers.append(n)
    return lines, numbers


def _is_number(token: str, dtype) -> bool:
    try:
        (float if np.dtype(dtype).kind == "f" else int)(token)
    except ValueError:
        return False
    return True


def convert_tokens(
    tokens: Sequence[str],
    dtype,
    path: str | os.PathLike,
    where_of_token: Callable[[int], str],
    what: str = "number",
) -> np.ndarray:
    """``np.array(tokens, dtype)``; on a bad token raise a located ValueError.

    ``where_of_token(k)`` names the place (e.g. ``"line 12"``) of token ``k``; it is only called
    on failure. Integer dtypes reject non-integers such as ``1.5``.
    """
    try:
        return np.array(tokens, dtype=dtype)
    except (ValueError, OverflowError):
        pass
    for k, tok in enumerate(tokens):
        if not _is_number(tok, dtype):
            kind = "an integer" if np.dtype(dtype).kind in "iu" else "a number"
            raise file_error(path, where_of_token(k), f"{what} {tok!r} is not {kind}") from None
        try:
            np.array([tok], dtype=dtype)
        except OverflowError:
            raise file_error(
                path, where_of_token(k), f"{what} {tok!r} is out of range for {np.dtype(dtype).name}"
            ) from None
    raise file_error(path, None, f"could not convert the {what}s")  # pragma: no cover - defensive


def token_locator(counts: Sequence[int] | np.ndarray, line_numbers: Sequence[int]) -> Callable[[int], str]:
    """Map a flat token index to ``"line N"`` given each line's token count."""
    ends = np.cumsum(np.asarray(counts, dtype=np.int64))

    def where(k: int) -> str:
        return f"line {line_numbers[int(np.searchsorted(ends, k, side='right'))]}"

    return where


def format_floats(values: Sequence[float] | np.ndarray) -> list[str]:
    """Shortest strings that read back to the same doubles (``repr``), ``"1.0"`` -> ``"1"``."""
    out = list(map(repr, np.asarray(values, dtype=np.float64).ravel().tolist()))
    return [s.removesuffix(".0") for s in out]
