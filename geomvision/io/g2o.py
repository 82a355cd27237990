"""Pose graphs in g2o's text format: SE(3), SE(2) and (a geomvision extension) Sim(3).

Lines (whitespace separated, ``#`` comments and empty lines ignored); one file holds one kind:

- ``VERTEX_SE3:QUAT id x y z qx qy qz qw``: node ``id`` with pose ``world_from_node``
  (translation, then the rotation as a quaternion in xyzw order);
- ``EDGE_SE3:QUAT i j x y z qx qy qz qw I11 I12 .. I16 I22 .. I66``: measurement ``i_from_j``
  (pose of node j in the frame of node i) and the upper triangle of its 6x6 information
  matrix, row by row (21 numbers, translation first);
- ``VERTEX_SE2 id x y theta`` and ``EDGE_SE2 i j dx dy dtheta I11 I12 I13 I22 I23 I33``: the 2-D
  graphs of ground robots (theta in radians; information order x, y, theta);
- ``VERTEX_SIM3:QUAT id x y z qx qy qz qw s`` and ``EDGE_SIM3:QUAT i j x y z qx qy qz qw s`` + the
  upper triangle of the 7x7 information (28 numbers, order translation, rotation, log-scale):
  ``x_world = s R x_node + t``. These two tags are geomvision's own (g2o's Sim(3) types store an
  exponential-map vector instead);
- ``FIX id [id ...]``: nodes held fixed.

A file without any VERTEX line is read with placeholder (identity) node poses for the ids its
edges name and ``poses_given=False``: optimisers then initialise them from the edges. Other tags
(parameters, landmarks) raise ``ValueError`` naming the line.

Written numbers are the shortest strings that read back to the same doubles (``repr``, with a
trailing ``.0`` dropped), so translations, angles, scales and information matrices round-trip
exactly. 3-D rotations are stored as matrices: a quaternion read is normalised and is written
back as the unit quaternion with qw >= 0 of that rotation, i.e. equal to the original up to its
normalisation (the original's printed precision) and a global sign. SE(2) edge angles are
stored as 2x2 rotations and written back as ``atan2`` of them (equal to the original within 1 ulp,
wrapped to (-pi, pi]).
"""

from __future__ import annotations

import os
import warnings
from itertools import chain

import numpy as np

from .._atomic import atomic_write
from .._validation import check_writer_arguments
from ..geometry.rigid import Rigid3
from ..geometry.rigid2 import Rigid2, rot2
from ..geometry.rotation import quat_xyzw_from_rotmat, rotmat_from_quat_xyzw
from ..geometry.sim3 import Sim3
from ..scene.pose_graph import KINDS, PoseGraph
from ._parsing import convert_tokens, data_lines, file_error, format_floats, read_text, token_locator

__all__ = ["read_g2o", "write_g2o"]

FIX = "FIX"
# kind -> (vertex tag, edge tag, numbers of a vertex's pose, numbers of an edge's measurement)
TAGS: dict[str, tuple[str, str, int, int]] = {
    "se3": ("VERTEX_SE3:QUAT", "EDGE_SE3:QUAT", 7, 7),
    "se2": ("VERTEX_SE2", "EDGE_SE2", 3, 3),
    "sim3": ("VERTEX_SIM3:QUAT", "EDGE_SIM3:QUAT", 8, 8),
}
_KIND_OF_TAG = {tag: kind for kind, (v, e, _, _) in TAGS.items() for tag in (v, e)}
VERTEX, EDGE = TAGS["se3"][0], TAGS["se3"][1]  # the SE(3) tags (kept as module constants)


def _triu(d: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(d)


def read_g2o(path: str | os.PathLike) -> PoseGraph:
    """Read a g2o pose graph (see module docstring). Returns a checked :class:`PoseGraph`."""
    spath = os.fspath(path)
    lines, numbers = data_lines(read_text(path))
    parsed = _parse_fast(lines, numbers)
    if parsed is None:  # the checked path names the bad line and token
        parsed = _parse_checked(lines, numbers, spath)
    kind, (v_ids, v_vals, vnum), (e_ids, e_vals, enum), (ftok, fnum) = parsed
    v_tag, e_tag, nv, ne = TAGS[kind]
    d, m, _ = KINDS[kind]
    seen: dict[int, int] = {}
    if len(np.unique(v_ids)) != len(v_ids):
        for k, vid in enumerate(v_ids.tolist()):
            if vid in seen:
                raise file_error(spath, f"line {vnum[k]}",
                                 f"duplicate vertex id {vid} (first on line {vnum[seen[vid]]})")
            seen[vid] = k
    poses_given = len(v_ids) > 0
    if poses_given:
        missing = ~np.isin(e_ids, v_ids)
        if missing.any():
            k = int(np.flatnonzero(missing.any(axis=1))[0])
            vid = int(e_ids[k][missing[k]][0])
            raise file_error(spath, f"line {enum[k]}", f"edge refers to vertex {vid}, which has no {v_tag} line")
        nodes = _nodes(kind, v_ids, v_vals, spath, vnum)
    else:  # placeholders for the ids the edges name, in order of appearance
        order = np.unique(e_ids.ravel(), return_index=True)[1]
        node_ids = e_ids.ravel()[np.sort(order)]
        identity = {"se3": Rigid3(), "se2": Rigid2(), "sim3": Sim3()}[kind]
        nodes = {int(i): identity for i in node_ids.tolist()}

    if kind == "se2":
        R_meas = rot2(e_vals[:, 2]).reshape(-1, 2, 2)
        t_meas = e_vals[:, :2].copy()
        s_meas = None
    else:
        _check_quats(e_vals[:, 3:7], spath, enum)
        R_meas = rotmat_from_quat_xyzw(e_vals[:, 3:7]) if len(e_ids) else np.zeros((0, 3, 3))
        t_meas = e_vals[:, :3].copy()
        s_meas = e_vals[:, 7].copy() if kind == "sim3" else None
        if s_meas is not None and not (s_meas > 0).all():
            raise file_error(spath, f"line {enum[int(np.flatnonzero(~(s_meas > 0))[0])]}", "scale must be > 0")
    iu = _triu(d)
    info = np.zeros((len(e_ids), d, d))
    info[:, iu[0], iu[1]] = e_vals[:, ne:]
    info[:, iu[1], iu[0]] = e_vals[:, ne:]

    fixed: set[int] = set()
    for t, num in zip(ftok, fnum):
        ids = _ints(t, spath, [num] * len(t), "vertex id")
        for vid in ids.tolist():
            if vid not in nodes:
                raise file_error(spath, f"line {num}", f"FIX refers to vertex {vid}, which has no {v_tag} line")
            fixed.add(vid)

    graph = PoseGraph(nodes=nodes, i_ids=e_ids[:, 0].copy(), j_ids=e_ids[:, 1].copy(), i_from_j_R=R_meas,
                      i_from_j_t=t_meas, information=info, fixed=fixed, kind=kind, i_from_j_scale=s_meas,
                      poses_given=poses_given)
    try:
        graph.check()
    except ValueError as exc:
        raise ValueError(f"{spath}: {exc}") from None
    return graph


def _nodes(kind: str, v_ids: np.ndarray, v_vals: np.ndarray, path: str, vnum: list[int]) -> dict:
    ids = v_ids.tolist()
    if kind == "se2":
        return {vid: Rigid2(v_vals[k, 2], v_vals[k, :2]) for k, vid in enumerate(ids)}
    _check_quats(v_vals[:, 3:7], path, vnum)
    R = rotmat_from_quat_xyzw(v_vals[:, 3:7]) if len(ids) else np.zeros((0, 3, 3))
    if kind == "sim3":
        bad = np.flatnonzero(~(v_vals[:, 7] > 0))
        if len(bad):
            raise file_error(path, f"line {vnum[int(bad[0])]}", "scale must be > 0")
        return {vid: Sim3(v_vals[k, 7], R[k], v_vals[k, :3], check=False) for k, vid in enumerate(ids)}
    return {vid: Rigid3(R[k], v_vals[k, :3], check=False) for k, vid in enumerate(ids)}


def _widths(kind: str) -> tuple[int, int]:
    """Fields of a vertex line and of an edge line of ``kind``, the tag included."""
    _, _, nv, ne = TAGS[kind]
    d = KINDS[kind][0]
    return 2 + nv, 3 + ne + d * (d + 1) // 2


def _parse_fast(lines: list[str], numbers: list[int]):
    """All lines at once with numpy's converters (a 100k-pose file in about a second); None when
    anything is off (unknown or mixed tags, a wrong field count, a token that is not a number, a
    non-integer id, NaN / inf): :func:`_parse_checked` then names the problem."""
    groups: dict[str, list[int]] = {}
    for k, line in enumerate(lines):  # the tag ends at the first space (a tab: the checked path)
        groups.setdefault(line[:line.find(" ")], []).append(k)
    fix = groups.pop(FIX, [])
    kinds = {_KIND_OF_TAG.get(tag) for tag in groups}
    if None in kinds or len(kinds) > 1:
        return None
    kind = kinds.pop() if kinds else "se3"
    v_tag, e_tag, _, _ = TAGS[kind]
    out = [kind]
    for tag, width, n_ids in ((v_tag, _widths(kind)[0], 1), (e_tag, _widths(kind)[1], 2)):
        idx = groups.get(tag, [])
        toks = " ".join([lines[k] for k in idx]).split()
        if len(toks) != len(idx) * width:
            return None
        table = np.array(toks, dtype=object).reshape(len(idx), width)
        try:
            ids = np.array(table[:, 1:1 + n_ids].ravel().tolist(), dtype=np.int64).reshape(len(idx), n_ids)
            vals = np.array(table[:, 1 + n_ids:].ravel().tolist(), dtype=np.float64).reshape(len(idx), -1)
        except (ValueError, OverflowError):
            return None
        if not np.isfinite(vals).all():
            return None
        out.append((ids[:, 0].copy() if n_ids == 1 else ids, vals, [numbers[k] for k in idx]))
    fix_rows = [lines[k].split()[1:] for k in fix]
    if any(not t for t in fix_rows):
        return None
    out.append((fix_rows, [numbers[k] for k in fix]))
    return tuple(out)


def _parse_checked(lines: list[str], numbers: list[int], spath: str):
    """Line by line, raising a ValueError that names the line and the problem."""
    kind = None
    kind_line = 0
    rows: dict[str, tuple[list[list[str]], list[int]]] = {"vertex": ([], []), "edge": ([], []), FIX: ([], [])}
    for line, num in zip(lines, numbers):
        tok = line.split()
        tag = tok[0]
        if tag == FIX:
            if len(tok) < 2:
                raise file_error(spath, f"line {num}", "FIX needs at least one vertex id")
            rows[FIX][0].append(tok[1:])
            rows[FIX][1].append(num)
            continue
        tag_kind = _KIND_OF_TAG.get(tag)
        if tag_kind is None:
            known = ", ".join(t for v in TAGS.values() for t in v[:2])
            raise file_error(spath, f"line {num}", f"unsupported g2o tag {tag!r}; geomvision reads {known} and {FIX}")
        if kind is None:
            kind, kind_line = tag_kind, num
        elif tag_kind != kind:
            raise file_error(spath, f"line {num}", f"{tag} in a {kind} graph (line {kind_line}); one file holds "
                                                   "one kind of pose graph")
        v_tag = TAGS[kind][0]
        want = _widths(kind)[0 if tag == v_tag else 1]
        if len(tok) != want:
            raise file_error(spath, f"line {num}", f"{tag} needs {want} fields, got {len(tok)}")
        which = "vertex" if tag == v_tag else "edge"
        rows[which][0].append(tok[1:])
        rows[which][1].append(num)
    kind = kind or "se3"
    nv, ne = _widths(kind)[0] - 2, _widths(kind)[1] - 3
    vtok, vnum = rows["vertex"]
    v_ids = _ints([t[0] for t in vtok], spath, vnum, "vertex id")
    v_vals = _floats([t[1:] for t in vtok], nv, spath, vnum)
    etok, enum = rows["edge"]
    e_ids = _ints([x for t in etok for x in t[:2]], spath, [n for n in enum for _ in range(2)], "vertex id")
    e_vals = _floats([t[2:] for t in etok], ne, spath, enum)
    return kind, (v_ids, v_vals, vnum), (e_ids.reshape(-1, 2), e_vals, enum), rows[FIX]


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
    """Write ``graph`` as g2o VERTEX / EDGE / ``FIX`` lines of its kind, atomically.

    Vertices in ``graph.nodes`` order (none when ``graph.poses_given`` is False), edges in array
    order, one ``FIX`` line (sorted ids) when nodes are fixed. The graph is ``check()``-ed first."""
    check_writer_arguments(graph, "write_g2o", "(graph, path)")
    if not isinstance(graph, PoseGraph):
        raise ValueError(f"graph must be a PoseGraph, got {type(graph).__name__}")
    graph.check()
    kind = graph.kind
    v_tag, e_tag, nv, ne = TAGS[kind]
    d = KINDS[kind][0]
    lines: list[str] = []
    if graph.num_nodes and graph.poses_given:
        ids = list(graph.nodes)
        poses = list(graph.nodes.values())
        if kind == "se2":
            vals_arr = np.array([[T.t[0], T.t[1], T.theta] for T in poses])
        else:
            _, R, t = graph.node_arrays()
            cols = [t, quat_xyzw_from_rotmat(R).reshape(-1, 4)]
            if kind == "sim3":
                cols.append(graph.node_scales()[:, None])
            vals_arr = np.concatenate(cols, axis=1)
        vals = format_floats(vals_arr)
        lines += [f"{v_tag} {ids[k]} " + " ".join(vals[nv * k: nv * k + nv]) for k in range(len(ids))]
    E = graph.num_edges
    if E:
        if kind == "se2":
            meas = np.concatenate([graph.i_from_j_t, np.arctan2(graph.i_from_j_R[:, 1, 0],
                                                                 graph.i_from_j_R[:, 0, 0])[:, None]], axis=1)
        else:
            cols = [graph.i_from_j_t, quat_xyzw_from_rotmat(graph.i_from_j_R).reshape(-1, 4)]
            if kind == "sim3":
                cols.append(graph.i_from_j_scale[:, None])
            meas = np.concatenate(cols, axis=1)
        iu = _triu(d)
        upper = graph.information[:, iu[0], iu[1]]
        width = ne + len(iu[0])
        vals = format_floats(np.concatenate([meas, upper], axis=1))
        i_str = list(map(str, graph.i_ids.tolist()))
        j_str = list(map(str, graph.j_ids.tolist()))
        lines += [f"{e_tag} {i_str[k]} {j_str[k]} " + " ".join(vals[width * k: width * k + width]) for k in range(E)]
    if graph.fixed:
        lines.append(f"{FIX} " + " ".join(map(str, sorted(graph.fixed))))
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
