"""Numba kernels never rebind a ``for`` loop's variable inside its loop.

Python resets the name at the next iteration, so such code runs, but every test of the name
after the rebinding reads the other value: an LO's round counter overwritten by an IRLS weight
(``for r in range(rounds): ... r = 1 - e / t ...; if r + 1 >= ABORT_ROUNDS``) silently disabled
the abort of every other-basin LO from 3b342fe to e22a81c. numba unifies the two types without a word."""

from __future__ import annotations

import ast

from geomvision._numba_cache import kernel_sources


def _is_kernel(fn: ast.FunctionDef) -> bool:
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("njit", "jit", "generated_jit", "overload", "register_jitable"):
            return True
    return False


def _names(target: ast.AST) -> set[str]:
    """The names an assignment target binds (not those it only reads, as in ``out[j] = ...``)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_names(e) for e in target.elts))
    if isinstance(target, ast.Starred):
        return _names(target.value)
    return set()


def rebound_loop_names(source: str) -> list[tuple[str, int, str]]:
    """(function, line, name) of every loop variable of a numba kernel assigned inside its loop."""
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not (isinstance(fn, ast.FunctionDef) and _is_kernel(fn)):
            continue
        for loop in ast.walk(fn):
            if not isinstance(loop, ast.For):
                continue
            loop_vars = {v for v in _names(loop.target) if not v.startswith("_")}  # throwaways may be reused
            for node in (n for stmt in loop.body for n in ast.walk(stmt)):
                if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    hit = loop_vars & set().union(*(_names(t) for t in targets))
                elif isinstance(node, ast.For):
                    hit = loop_vars & _names(node.target)
                else:
                    continue
                found += [(fn.name, node.lineno, name) for name in sorted(hit)]
    return found


def test_the_check_finds_a_rebound_loop_variable():
    src = (
        "from numba import njit\n"
        "@njit(cache=True)\n"
        "def lo(errs, rounds):\n"
        "    for r in range(rounds):\n"
        "        for j in range(3):\n"
        "            r = 1.0 - errs[j]\n"
        "        for r in range(2):\n"
        "            pass\n"
        "        if r + 1 >= 2:\n"
        "            break\n"
        "def plain(xs):\n"
        "    for x in xs:\n"
        "        x = 2 * x\n"
    )
    assert rebound_loop_names(src) == [("lo", 6, "r"), ("lo", 7, "r")]


def test_no_kernel_of_the_package_rebinds_a_loop_variable():
    found = {path.name: hits for path in kernel_sources() if (hits := rebound_loop_names(path.read_text()))}
    assert not found
