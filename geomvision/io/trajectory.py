"""Camera trajectories in the TUM RGB-D format: ``timestamp tx ty tz qx qy qz qw`` per line.

The format of the TUM RGB-D benchmark, read by its evaluation scripts, ``evo`` and most SLAM
systems. Each line holds one pose **world_from_camera**: ``(tx, ty, tz)`` is the camera centre
in world coordinates and ``(qx, qy, qz, qw)`` (scalar last) the rotation from camera to world.
geomvision poses are ``cam_from_world``, so :func:`write_tum` writes ``cam_from_world.inverse()``
and :func:`read_tum` inverts back. Lines starting with ``#`` and empty lines are comments.

A trajectory is the pair ``(timestamps (F,), poses)`` that :meth:`OnlineMapper.trajectory
<geomvision.sfm.OnlineMapper.trajectory>` returns; frames whose pose is ``None`` are left out of
the file. Numbers are written as the shortest strings that read back to the same doubles, so
timestamps and centres round-trip exactly and rotations to rounding (about 1e-16).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .._atomic import atomic_write
from .._validation import check_writer_arguments
from ..geometry.rigid import Rigid3
from ..geometry.rotation import quat_xyzw_from_rotmat, rotmat_from_quat_xyzw
from ._parsing import convert_tokens, data_lines, file_error, format_floats, read_text

__all__ = ["read_tum", "write_tum"]

HEADER = "# timestamp tx ty tz qx qy qz qw"
_QUAT_NORM_TOL = 1e-2  # printed quaternions are unit to their precision; farther off is not a TUM line


def write_tum(trajectory: tuple[Sequence[float] | np.ndarray, Sequence[Rigid3 | None]],
              path: str | os.PathLike) -> None:
    """Write ``trajectory = (timestamps (F,), poses)`` (``cam_from_world`` each, or ``None`` for a
    frame without a pose, which is skipped) as a TUM file, atomically, with a header comment.
    ``(object, path)`` like every writer of geomvision."""
    check_writer_arguments(trajectory, "write_tum", "(trajectory, path)")
    if not isinstance(trajectory, (tuple, list)) or len(trajectory) != 2:
        raise ValueError("trajectory must be a pair (timestamps, poses), as OnlineMapper.trajectory() returns, got "
                         f"{type(trajectory).__name__}")
    timestamps, poses = trajectory
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.ndim != 1:
        raise ValueError(f"timestamps must be one-dimensional (F,), got shape {ts.shape}")
    poses = list(poses)
    if len(poses) != len(ts):
        raise ValueError(f"trajectory: {len(ts)} timestamps but {len(poses)} poses")
    keep = []
    for k, T in enumerate(poses):
        if T is None:
            continue
        if not isinstance(T, Rigid3):
            raise ValueError(f"trajectory: pose {k} must be a Rigid3 (cam_from_world) or None, got {type(T).__name__}")
        if not np.isfinite(ts[k]):
            raise ValueError(f"trajectory: the timestamp of pose {k} is {ts[k]}, expected a finite number")
        keep.append(k)
    lines = [HEADER]
    if keep:
        R_cw = np.stack([poses[k].R for k in keep])  # cam_from_world rotations
        t_cw = np.stack([poses[k].t for k in keep])
        R_wc = np.transpose(R_cw, (0, 2, 1))  # world_from_cam
        centres = -np.einsum("kij,kj->ki", R_wc, t_cw)
        vals = np.column_stack([ts[keep], centres, quat_xyzw_from_rotmat(R_wc).reshape(-1, 4)]) + 0.0  # no "-0"
        text = format_floats(vals)
        lines += [" ".join(text[8 * k: 8 * k + 8]) for k in range(len(keep))]
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def read_tum(path: str | os.PathLike) -> tuple[np.ndarray, list[Rigid3]]:
    """Read a TUM trajectory: ``(timestamps (F,), poses)`` with each pose ``cam_from_world``
    (the file's ``world_from_camera`` inverted). Quaternions are normalised; a malformed line
    (not 8 numbers, a non-finite value, a quaternion far from unit length) raises ``ValueError``
    naming the file and the line."""
    spath = os.fspath(path)
    lines, numbers = data_lines(read_text(path))
    F = len(lines)
    if F == 0:
        return np.zeros(0), []
    tokens: list[str] = []
    for line, n in zip(lines, numbers):
        toks = line.split()
        if len(toks) != 8:
            raise file_error(spath, f"line {n}", f"expected 8 numbers 'timestamp tx ty tz qx qy qz qw', "
                                                 f"got {len(toks)}: {line[:80]!r}")
        tokens += toks
    vals = convert_tokens(tokens, np.float64, spath, lambda k: f"line {numbers[k // 8]}").reshape(F, 8)
    bad = ~np.isfinite(vals).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise file_error(spath, f"line {numbers[k]}", f"non-finite value in {lines[k][:80]!r}")
    norms = np.linalg.norm(vals[:, 4:], axis=1)
    bad = np.abs(norms - 1.0) > _QUAT_NORM_TOL
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise file_error(spath, f"line {numbers[k]}", f"the quaternion qx qy qz qw has norm {norms[k]:.6g}, expected 1 "
                                                      "(is this a TUM trajectory 'timestamp tx ty tz qx qy qz qw'?)")
    R_wc = rotmat_from_quat_xyzw(vals[:, 4:]).reshape(F, 3, 3)
    R_cw = np.transpose(R_wc, (0, 2, 1))
    t_cw = -np.einsum("kij,kj->ki", R_cw, vals[:, 1:4])
    return vals[:, 0].copy(), [Rigid3(R_cw[k], t_cw[k], check=False) for k in range(F)]
