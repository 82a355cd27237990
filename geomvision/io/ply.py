"""Coloured point clouds as PLY files.

``write_ply`` writes ``binary_little_endian`` PLY with vertex properties ``x y z`` as
**double** by default (lossless: a geo-referenced coordinate like 512345.678 keeps its
millimetres, which float32 rounds to 3 cm; MeshLab, CloudCompare, Open3D and three.js read
double) or as float with ``dtype="float32"`` (half the size), plus ``red green blue`` as uchar
when there are colours. ``read_ply`` reads the vertex positions and colours of ASCII and binary
(little- and big-endian) PLY files such as those written here, by COLMAP (``float`` xyz, uchar
rgb, optionally normals) and by Open3D (``double`` xyz); other vertex properties and other
elements (faces, ...) are skipped.
"""

from __future__ import annotations

import os

import numpy as np

from .._validation import as_points, check_writer_arguments
from ..scene.reconstruction import Reconstruction
from .._atomic import atomic_write
from ._parsing import convert_tokens, file_error, token_locator

__all__ = ["read_ply", "write_ply"]

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_COLOR_NAMES = (("red", "green", "blue"), ("diffuse_red", "diffuse_green", "diffuse_blue"), ("r", "g", "b"))


def write_ply(
    rec_or_xyz: Reconstruction | np.ndarray,
    path: str | os.PathLike,
    colors: np.ndarray | None = None,
    *,
    dtype: str = "float64",
) -> None:
    """Write points as a binary little-endian PLY, atomically.

    ``rec_or_xyz``: a Reconstruction (its points3D in id order, with their colours) or an
    (N,3) array of points. ``colors`` (N,3): uint8-range integers 0..255 or floats in [0, 1];
    it overrides a Reconstruction's colours; without colours (array input) no colour
    properties are written. ``dtype``: ``"float64"`` (default, lossless) or ``"float32"``.
    """
    check_writer_arguments(rec_or_xyz, "write_ply", "(rec_or_xyz, path)")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if isinstance(rec_or_xyz, Reconstruction):
        _, xyz, rec_colors = rec_or_xyz.point_arrays()
        if colors is None:
            colors = rec_colors
    else:
        xyz = as_points(rec_or_xyz, "rec_or_xyz", 3)
    rgb = None if colors is None else _colors_uint8(colors, len(xyz))
    coord = "<f8" if dtype == "float64" else "<f4"
    fields = [("x", coord), ("y", coord), ("z", coord)]
    if rgb is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vert = np.empty(len(xyz), dtype=np.dtype(fields))
    vert["x"], vert["y"], vert["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if rgb is not None:
        vert["red"], vert["green"], vert["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    ply_type = "double" if dtype == "float64" else "float"
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by geomvision",
        f"element vertex {len(xyz)}",
        *(f"property {ply_type} {axis}" for axis in "xyz"),
        *(["property uchar red", "property uchar green", "property uchar blue"] if rgb is not None else []),
        "end_header",
    ]
    with atomic_write(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(vert.tobytes())


def _colors_uint8(colors, n: int) -> np.ndarray:
    c = np.asarray(colors)
    if c.shape != (n, 3):
        raise ValueError(f"colors must have shape ({n}, 3) like the points, got {c.shape}")
    if c.dtype.kind in "iub":
        if c.size and (c.min() < 0 or c.max() > 255):
            raise ValueError(f"colors: integer colours must lie in 0..255, got {c.min()}..{c.max()}")
        return c.astype(np.uint8)
    if c.dtype.kind == "f":
        if not np.isfinite(c).all() or (c.size and (c.min() < 0.0 or c.max() > 1.0)):
            raise ValueError(
                "colors: float colours must lie in [0, 1] (got values outside); pass uint8 for 0..255 colours"
            )
        return np.round(c * 255.0).astype(np.uint8)
    raise ValueError(f"colors must be an integer or float array, got dtype {c.dtype}")


# --- reading ---------------------------------------------------------------------------------
class _Element:
    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self.count = count
        self.props: list[tuple[str, str, str | None]] = []  # (name, type, list count type or None)

    @property
    def has_lists(self) -> bool:
        return any(p[2] is not None for p in self.props)


def _parse_header(data: bytes, path: str) -> tuple[str, list[_Element], int, int]:
    """(format, elements, byte offset of the body, number of header lines)."""
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise file_error(path, "line 1", "not a PLY file (it must start with 'ply' and have an 'end_header' line)")
    nl = data.find(b"\n", end)
    body = len(data) if nl < 0 else nl + 1
    try:
        lines = data[:body].decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise file_error(path, "header", "the header is not ASCII text") from None
    fmt = None
    elements: list[_Element] = []
    for n, raw in enumerate(lines, start=1):
        tok = raw.split()
        if not tok or tok[0] in ("ply", "comment", "obj_info", "end_header"):
            continue
        where = f"line {n}"
        if tok[0] == "format":
            if len(tok) != 3 or tok[1] not in _FORMATS:
                raise file_error(
                    path, where, f"unknown format line {raw.strip()!r} (expected ascii or binary_*_endian)"
                )
            fmt = tok[1]
        elif tok[0] == "element":
            if len(tok) != 3 or not tok[2].isdigit():
                raise file_error(path, where, f"malformed element line {raw.strip()!r} (expected 'element NAME COUNT')")
            elements.append(_Element(tok[1], int(tok[2])))
        elif tok[0] == "property":
            if not elements:
                raise file_error(path, where, "property line before any element line")
            if len(tok) == 5 and tok[1] == "list":
                if tok[2] not in _TYPES or tok[3] not in _TYPES:
                    raise file_error(path, where, f"unknown property type in {raw.strip()!r}")
                elements[-1].props.append((tok[4], tok[3], tok[2]))
            elif len(tok) == 3:
                if tok[1] not in _TYPES:
                    raise file_error(path, where, f"unknown property type {tok[1]!r}")
                elements[-1].props.append((tok[2], tok[1], None))
            else:
                raise file_error(path, where, f"malformed property line {raw.strip()!r}")
        else:
            raise file_error(path, where, f"unknown header keyword {tok[0]!r}")
    if fmt is None:
        raise file_error(path, "header", "no 'format' line")
    return fmt, elements, body, len(lines) - 1


def _skip_binary_element(el: _Element, data: bytes, pos: int, endian: str, path: str) -> int:
    if not el.has_lists:
        size = int(np.dtype([(p[0], endian + _TYPES[p[1]]) for p in el.props]).itemsize) * el.count
        if pos + size > len(data):
            raise file_error(path, f"byte {pos}", f"truncated file: element '{el.name}' needs {size} bytes")
        return pos + size
    for k in range(el.count):  # list properties: each item has its own length
        for _, typ, count_type in el.props:
            item = np.dtype(endian + _TYPES[typ]).itemsize
            if count_type is None:
                pos += item
                continue
            ct = np.dtype(endian + _TYPES[count_type])
            if pos + ct.itemsize > len(data):
                raise file_error(path, f"{el.name} record {k} (byte {pos})", "truncated file")
            n = int(np.frombuffer(data, ct, 1, pos)[0])
            pos += ct.itemsize + n * item
        if pos > len(data):
            raise file_error(path, f"{el.name} record {k} (byte {pos})", "truncated file")
    return pos


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Vertex positions (N,3) float64 and colours (N,3) uint8 (None when the file has none).

    Reads ASCII and binary PLY; colours are the ``red green blue`` (or ``diffuse_*``) vertex
    properties: integer values 0..255, or floats in [0, 1] scaled to 0..255."""
    spath = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ValueError(f"{spath}: file not found") from None
    fmt, elements, pos, header_lines = _parse_header(data, spath)
    vertex = next((el for el in elements if el.name == "vertex"), None)
    if vertex is None:
        raise file_error(spath, "header", "no 'element vertex' in the header")
    names = [p[0] for p in vertex.props]
    for axis in "xyz":
        if axis not in names:
            raise file_error(spath, "header", f"the vertex element has no '{axis}' property")
    if vertex.has_lists:
        raise file_error(spath, "header", "vertex elements with list properties are not supported")
    if fmt == "ascii":
        table = _read_ascii_vertices(data, pos, header_lines, elements, vertex, spath)
    else:
        endian = _FORMATS[fmt]
        for el in elements:
            if el is vertex:
                break
            pos = _skip_binary_element(el, data, pos, endian, spath)
        dt = np.dtype([(p[0], endian + _TYPES[p[1]]) for p in vertex.props])
        need = dt.itemsize * vertex.count
        if pos + need > len(data):
            k = (len(data) - pos) // dt.itemsize
            raise file_error(
                spath, f"vertex record {k} (byte {pos + k * dt.itemsize})",
                f"truncated file: {vertex.count} vertices need {need} bytes, {len(data) - pos} remain",
            )  # fmt: skip
        arr = np.frombuffer(data, dt, vertex.count, pos)
        table = {name: arr[name] for name in names}
    xyz = np.stack([table[a].astype(np.float64) for a in "xyz"], axis=1)
    colors = None
    for trio in _COLOR_NAMES:
        if all(c in table for c in trio):
            colors = _colors_from_file(np.stack([table[c] for c in trio], axis=1), spath)
            break
    return xyz, colors


def _colors_from_file(c: np.ndarray, path: str) -> np.ndarray:
    if c.dtype.kind == "f":
        if c.size and (not np.isfinite(c).all() or c.min() < 0 or c.max() > 1):
            raise file_error(path, "vertex colours", "float colours outside [0, 1]")
        return np.round(c.astype(np.float64) * 255.0).astype(np.uint8)
    if c.size and (c.min() < 0 or c.max() > 255):
        raise file_error(path, "vertex colours", f"integer colours outside 0..255 ({c.min()}..{c.max()})")
    return c.astype(np.uint8)


def _read_ascii_vertices(data, pos, header_lines, elements, vertex, path) -> dict[str, np.ndarray]:
    try:
        lines = data[pos:].decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise file_error(path, "body", "an ASCII PLY body must be ASCII text") from None
    first = header_lines + 1  # 1-based line number of lines[0]
    skip = 0
    for el in elements:
        if el is vertex:
            break
        skip += el.count
    rows = lines[skip : skip + vertex.count]
    if len(rows) < vertex.count or (rows and not rows[-1].strip() and vertex.count):
        have = sum(1 for r in rows if r.strip())
        raise file_error(
            path, f"line {first + skip + have}", f"truncated file: {vertex.count} vertex lines expected, {have} found"
        )
    split = [r.split() for r in rows]
    counts = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    nprops = len(vertex.props)
    bad = np.flatnonzero(counts != nprops)
    if len(bad):
        k = int(bad[0])
        raise file_error(path, f"line {first + skip + k}", f"expected {nprops} vertex values, got {counts[k]}")
    flat = [t for row in split for t in row]
    locate = token_locator(counts, list(range(first + skip, first + skip + len(rows))))
    vals = convert_tokens(flat, np.float64, path, locate, "vertex value").reshape(-1, nprops)
    out = {}
    for j, (name, typ, _) in enumerate(vertex.props):
        col = vals[:, j]
        kind = np.dtype(_TYPES[typ]).kind
        if kind in "iu":
            if np.any(col != np.round(col)):
                k = int(np.flatnonzero(col != np.round(col))[0])
                raise file_error(
                    path, f"line {first + skip + k}", f"property {name} ({typ}) value {col[k]} is not an integer"
                )
            col = col.astype(np.int64)
        out[name] = col
    return out
