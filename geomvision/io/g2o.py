"""3-D pose graphs in g2o's text format.

Lines (whitespace separated, ``#`` comments and empty lines ignored):

- ``VERTEX_SE3:QUAT id x y z qx qy qz qw``: node ``id`` with pose ``world_from_node``
  (translation, then the rotation as a quaternion in xyzw order);
- ``EDGE_SE3:QUAT i j x y z qx qy qz qw I11 I12 .. I16 I22 .. I66``: measurement ``i_from_j``
  (pose of node j in the frame of node i) and the upper triangle of its 6x6 information
  matrix, row by row (21 numbers, translation first);
- ``FIX id [id ...]``: nodes held fixed.

Other tags (2-D types, parameters, landmarks) raise ``ValueError`` naming the line.

Written numbers are the shortest strings that read back to the same doubles (``repr``, with a
trailing ``.0`` dropped), so translations and information matrices round-trip exactly and a file
rewritten after reading matches the original number for number. Rotations are stored as
matrices: a quaternion read is normalised and is written back as the unit quaternion with
qw >= 0 of that rotation, i.e. equal to the original up to its normalisation (the original's
printed precision) and a global sign.
"""

from __future__ import annotations

import os
from itertools import chain

import numpy as np

from ..geometry.rigid import Rigid3
from ..geometry.rotation import quat_xyzw_from_rotmat, rotmat_from_quat_xyzw
from ..scene.pose_graph import PoseGraph
from .._atomic import atomic_write
from ._parsing import convert_tokens, data_lines, file_error, format_floats, read_text, token_locator

__all__ = ["read_g2o", "write_g2o"]

VERTEX = "VERTEX_SE3:QUAT"
EDGE = "EDGE_SE3:QUAT"
FIX = "FIX"
_TRIU = np.triu_indices(6)


def read_g2o(path: str | os.PathLike) -> PoseGraph:
    """Read a g2o 3-D pose graph (see module docstring). Returns a checked :class:`PoseGraph`."""
    spath = os.fspath(path)
    lines, numbers = data_lines(read_text(path))
    groups: dict[str, tuple[list[list[str]], list[int]]] = {VERTEX: ([], []), EDGE: ([], []), FIX: ([], [])}
    expected = {VERTEX: 9, EDGE: 31}
    for line, num in zip(lines, numbers):
        tok = line.split()
        tag = tok[0]
        if tag not in groups:
            raise file_error(
                spath, f"line {num}", f"unsupported g2o tag {tag!r}; geomvision reads {VERTEX}, {EDGE} and {FIX}"
            )
        if tag in expected and len(tok) != expected[tag]:
            raise file_error(spath, f"line {num}", f"{tag} needs {expected[tag]} fields, got {len(tok)}")
        if tag == FIX and len(tok) < 2:
            raise file_error(spath, f"line {num}", "FIX needs at least one vertex id")
        groups[tag][0].append(tok[1:])
        groups[tag][1].append(num)

    vtok, vnum = groups[VERTEX]
    v_ids = _ints([t[0] for t in vtok], spath, vnum, "vertex id")
    v_vals = _floats([t[1:] for t in vtok], 7, spath, vnum)
    seen: dict[int, int] = {}
    for k, vid in enumerate(v_ids.tolist()):
        if vid in seen:
            raise file_error(spath, f"line {vnum[k]}", f"duplicate vertex id {vid} (first on line {vnum[seen[vid]]})")
        seen[vid] = k
    _check_quats(v_vals[:, 3:7], spath, vnum)
    R_nodes = rotmat_from_quat_xyzw(v_vals[:, 3:7]) if len(v_ids) else np.zeros((0, 3, 3))
    nodes = {vid: Rigid3(R_nodes[k], v_vals[k, :3], check=False) for k, vid in enumerate(v_ids.tolist())}

    etok, enum = groups[EDGE]
    e_ids = _ints([x for t in etok for x in t[:2]], spath, [n for n in enum for _ in range(2)], "vertex id")
    e_ids = e_ids.reshape(-1, 2)
    e_vals = _floats([t[2:] for t in etok], 28, spath, enum)
    missing = ~np.isin(e_ids, v_ids)
    if missing.any():
        k = int(np.flatnonzero(missing.any(axis=1))[0])
        vid = int(e_ids[k][missing[k]][0])
        raise file_error(spath, f"line {enum[k]}", f"edge refers to vertex {vid}, which has no {VERTEX} line")
    _check_quats(e_vals[:, 3:7], spath, enum)
    info = np.zeros((len(etok), 6, 6))
    info[:, _TRIU[0], _TRIU[1]] = e_vals[:, 7:]
    info[:, _TRIU[1], _TRIU[0]] = e_vals[:, 7:]

    fixed: set[int] = set()
    ftok, fnum = groups[FIX]
    for t, num in zip(ftok, fnum):
        ids = _ints(t, spath, [num] * len(t), "vertex id")
        for vid in ids.tolist():
            if vid not in nodes:
                raise file_error(spath, f"line {num}", f"FIX refers to vertex {vid}, which has no {VERTEX} line")
            fixed.add(vid)

    graph = PoseGraph(
        nodes=nodes,
        i_ids=e_ids[:, 0].copy(),
        j_ids=e_ids[:, 1].copy(),
        i_from_j_R=rotmat_from_quat_xyzw(e_vals[:, 3:7]) if len(etok) else np.zeros((0, 3, 3)),
        i_from_j_t=e_vals[:, :3].copy(),
        information=info,
        fixed=fixed,
    )
    try:
        graph.check()
    except ValueError as exc:
        raise ValueError(f"{spath}: {exc}") from None
    return graph


def _ints(tokens: list[str], path: str, line_numbers: list[int], what: str) -> np.ndarray:
    return convert_tokens(tokens, np.int64, path, lambda k: f"line {line_numbers[k]}", what)


def _floats(rows: list[list[str]], width: int, path: str, line_numbers: list[int]) -> np.ndarray:
    flat = list(chain.from_iterable(rows))
    vals = convert_tokens(flat, np.float64, path, token_locator([width] * len(rows), line_numbers), "value")
    vals = vals.reshape(-1, width)
    bad = ~np.isfinite(vals).all(axis=1)
    if bad.any():
        raise file_error(path, f"line {line_numbers[int(np.flatnonzero(bad)[0])]}", "NaN or inf value")
    return vals


def _check_quats(quat_xyzw: np.ndarray, path: str, line_numbers: list[int]) -> None:
    norms = np.linalg.norm(quat_xyzw, axis=1)
    bad = ~(norms > 1e-12)
    if bad.any():
        raise file_error(path, f"line {line_numbers[int(np.flatnonzero(bad)[0])]}", "zero quaternion")


def write_g2o(graph: PoseGraph, path: str | os.PathLike) -> None:
    """Write ``graph`` as g2o ``VERTEX_SE3:QUAT`` / ``EDGE_SE3:QUAT`` / ``FIX`` lines, atomically.

    Vertices in ``graph.nodes`` order, edges in array order, one ``FIX`` line (sorted ids)
    when nodes are fixed. The graph is ``check()``-ed first."""
    if not isinstance(graph, PoseGraph):
        raise ValueError(f"graph must be a PoseGraph, got {type(graph).__name__}")
    graph.check()
    ids, R, t = graph.node_arrays()
    lines: list[str] = []
    if len(ids):
        vals = format_floats(np.concatenate([t, quat_xyzw_from_rotmat(R).reshape(-1, 4)], axis=1))
        id_str = list(map(str, ids.tolist()))
        lines += [f"{VERTEX} {id_str[k]} " + " ".join(vals[7 * k : 7 * k + 7]) for k in range(len(ids))]
    E = graph.num_edges
    if E:
        q = quat_xyzw_from_rotmat(graph.i_from_j_R).reshape(-1, 4)
        upper = graph.information[:, _TRIU[0], _TRIU[1]]
        vals = format_floats(np.concatenate([graph.i_from_j_t, q, upper], axis=1))
        i_str = list(map(str, graph.i_ids.tolist()))
        j_str = list(map(str, graph.j_ids.tolist()))
        lines += [f"{EDGE} {i_str[k]} {j_str[k]} " + " ".join(vals[28 * k : 28 * k + 28]) for k in range(E)]
    if graph.fixed:
        lines.append(f"{FIX} " + " ".join(map(str, sorted(graph.fixed))))
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
