"""Module attributes imported on first use (PEP 562), for packages whose parts are heavy.

``__getattr__, __dir__ = lazy_attributes(__name__, table, globals())`` in a package's
``__init__``: ``table`` maps a public name to the module defining it (absolute, or relative to
the package: ``".pose_graph"``), optionally ``"module:attribute"`` when the name differs, or
``"module:"`` for the module itself (``geomvision.io`` as ``gv.io`` without importing it first).
"""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_attributes(package: str, table: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """(``__getattr__``, ``__dir__``) for ``package`` serving the names of ``table``."""

    def __getattr__(name: str):
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, colon, attribute = target.partition(":")
        value = importlib.import_module(module, package)
        if not (colon and not attribute):
            value = getattr(value, attribute or name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
