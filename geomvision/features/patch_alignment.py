"""Sub-pixel patch alignment (affine-photometric Lucas-Kanade) and multi-view keypoint refinement.

SIFT localises a keypoint from its own image alone, to a few tenths of a pixel, and the error
grows with the detection scale. Two views of one scene point can be registered far more
precisely by aligning the image patches around them: the texture itself fixes the sub-pixel
offset. :func:`refine_track_keypoints` does this for every track of an SfM problem: each track
keeps one reference observation (the one detected at the largest scale, so that its patch
samples the scene most finely) and every other observation of the track is moved to where the
reference patch aligns best in its image. All observations of a track then mark the same
physical point, which is what triangulation and bundle adjustment assume.

Conventions: pixels (u, v) with (0, 0) the centre of the top-left pixel; ``A`` maps offsets in
the reference image to offsets in the target image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .._interrupt import check as check_interrupt
from .._interrupt import interrupt_as_keyboard_interrupt
from .._validation import as_array, check_int, check_positive
from . import _patch_kernels as _k

__all__ = ["PatchAlignmentOptions", "align_patches", "gaussian_weights", "refine_track_keypoints", "sample_patches"]


@dataclass(frozen=True)
class PatchAlignmentOptions:
    """Options of patch alignment.

    patch_radius : patches are (2r+1) x (2r+1) samples of 1-pixel spacing in the reference image,
        weighted by a Gaussian of standard deviation 0.6 r; r in pixels, integer >= 2.
    patch_max_iterations : Gauss-Newton iterations per patch at most (integer >= 1); converged when the step is below
        ``patch_tol_px``.
    patch_tol_px : the alignment has converged when its step moves the keypoint less than this
        (pixels); > 0.
    max_patch_shift_px : an alignment that moves the keypoint farther than this (pixels) from its
        start fails.
    min_patch_ncc : an aligned patch whose normalised cross-correlation with the reference is lower
        fails (occlusion, specularity, repeated texture); in [-1, 1].
    """

    patch_radius: int = 8
    patch_max_iterations: int = 10
    patch_tol_px: float = 0.01
    max_patch_shift_px: float = 2.0
    min_patch_ncc: float = 0.8

    def __post_init__(self) -> None:
        check_int(self.patch_radius, "PatchAlignmentOptions.patch_radius", minimum=2)
        check_int(self.patch_max_iterations, "PatchAlignmentOptions.patch_max_iterations", minimum=1)
        check_positive(self.patch_tol_px, "PatchAlignmentOptions.patch_tol_px")
        check_positive(self.max_patch_shift_px, "PatchAlignmentOptions.max_patch_shift_px")
        if not -1.0 <= self.min_patch_ncc <= 1.0:
            raise ValueError(f"PatchAlignmentOptions.min_patch_ncc must lie in [-1, 1], got {self.min_patch_ncc!r}")


def _gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_RGB2GRAY)  # float: no rounding to 8 bits
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"{name} must be an (H,W) grey or (H,W,3) RGB image, got shape {np.shape(image)}")
    img = np.ascontiguousarray(img, dtype=np.float32)
    if not np.isfinite(img).all():
        raise ValueError(f"{name} contains NaN or inf")
    return img


def gaussian_weights(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) Gaussian window of standard deviation 0.6 r (peak 1)."""
    g = np.arange(-radius, radius + 1, dtype=np.float64)
    s = 0.6 * radius
    return np.exp(-0.5 * (g[:, None] ** 2 + g[None, :] ** 2) / (s * s))


def sample_patches(image: np.ndarray, uv: np.ndarray, radius: int) -> np.ndarray:
    """(N, 2r+1, 2r+1) float32 patches of ``image`` centred on ``uv`` (N,2) (bilinear, 1-pixel
    spacing; row = v, column = u). Patches that leave the image are NaN."""
    check_int(radius, "radius", minimum=1)
    uv = as_array(uv, "uv", (None, 2))
    return _k.sample_patches(_gray(image), uv, int(radius))


def align_patches(
    image: np.ndarray,
    patches: np.ndarray,
    uv0: np.ndarray,
    A0: np.ndarray | None = None,
    options: PatchAlignmentOptions | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find each reference patch in ``image`` by affine-photometric Lucas-Kanade.

    patches : (N,P,P) reference patches (from :func:`sample_patches`, P = 2r+1).
    uv0 : (N,2) start positions in ``image``; A0 : (N,2,2) start affines (reference offsets to
        image offsets; identity when None).
    Returns ``uv`` (N,2) (``uv0`` where alignment failed), ``ncc`` (N,) (-1 on failure) and a
    boolean ``ok`` (N,): converged within ``max_patch_shift_px`` with ``ncc >= min_patch_ncc``.
    """
    options = PatchAlignmentOptions() if options is None else options
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1] != patches.shape[2] or patches.shape[1] % 2 != 1 or patches.shape[1] < 5:
        raise ValueError(f"patches must have shape (N, P, P) with odd P >= 5, got {patches.shape}")
    n = len(patches)
    uv0 = as_array(uv0, "uv0", (n, 2))
    A0 = np.broadcast_to(np.eye(2), (n, 2, 2)) if A0 is None else as_array(A0, "A0", (n, 2, 2))
    radius = (patches.shape[1] - 1) // 2
    gray, refs, weights = _gray(image), np.ascontiguousarray(patches, np.float32), gaussian_weights(radius)
    A0 = np.ascontiguousarray(A0, np.float64)
    parts = []
    for s in range(0, max(n, 1), PATCHES_PER_CALL):  # bounded calls, Ctrl-C checked between them
        if s:
            check_interrupt()
        e = min(n, s + PATCHES_PER_CALL)
        with interrupt_as_keyboard_interrupt():
            parts.append(_k.align_patches(gray, refs[s:e], weights, uv0[s:e], A0[s:e], options.patch_max_iterations,
                                          options.patch_tol_px, options.max_patch_shift_px))
    uv, ncc, converged = (np.concatenate(a) for a in zip(*parts)) if len(parts) > 1 else parts[0]
    ok = converged & (ncc >= options.min_patch_ncc)
    uv[~ok] = uv0[~ok]
    return uv, ncc, ok


def _reference_observations(ptr: np.ndarray, track_of_obs: np.ndarray, obs_scale: np.ndarray) -> np.ndarray:
    """(T,) index of each track's observation with the largest scale (first of equals)."""
    order = np.lexsort((np.arange(len(obs_scale)), -obs_scale, track_of_obs))
    return order[ptr[:-1]]


def _group_by(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, bounds): the indices with key k are ``order[bounds[k]:bounds[k+1]]`` (ascending)."""
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(n + 1))


# patches per kernel call: fountain-P11's ~8k observations of one image take ~0.35 s (2 cores)
PATCHES_PER_CALL = 4096
MAX_PATCH_BYTES = 256 * 2**20  # reference patches held at once; more tracks are refined in chunks


def refine_track_keypoints(
    read_image: Callable[[int], np.ndarray],
    keypoints: Sequence[np.ndarray],
    scales: Sequence[np.ndarray],
    orientations_rad: Sequence[np.ndarray],
    ptr: np.ndarray,
    image_idx: np.ndarray,
    keypoint_idx: np.ndarray,
    options: PatchAlignmentOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Move the observations of every track onto its reference observation's patch.

    read_image(i) -> image i (grey or RGB); keypoints / scales / orientations_rad : per image
    (N_i,2) / (N_i,) / (N_i,) as in :class:`~geomvision.features.Features`. The tracks are in
    CSR form: track t has observations ``image_idx[ptr[t]:ptr[t+1]]``, ``keypoint_idx[...]``.
    Images are read one at a time, twice (reference patches, then alignment) per chunk of
    tracks whose patches fit in ``MAX_PATCH_BYTES``. ``progress(k)`` is called as observations
    are done (k of them; the calls add up to the number of observations). Returns the refined
    keypoints (copies; a keypoint outside every track, a reference, or one whose alignment fails
    keeps its position), per image a boolean mask of the keypoints now aligned to their track
    (the moved ones and the references they were aligned to), and statistics: ``num_refined``,
    ``num_failed``, ``median_shift_px``.
    """
    options = PatchAlignmentOptions() if options is None else options
    ptr = np.asarray(ptr, np.int64)
    image_idx = np.asarray(image_idx, np.int64)
    keypoint_idx = np.asarray(keypoint_idx, np.int64)
    n_img = len(keypoints)
    refined = [np.array(k, dtype=np.float64, copy=True) for k in keypoints]
    masks = [np.zeros(len(k), bool) for k in keypoints]
    n_tracks = len(ptr) - 1
    stats = {"num_refined": 0, "num_failed": 0, "median_shift_px": 0.0}
    if n_tracks == 0:
        return refined, masks, stats
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in keypoints])])
    flat = offsets[image_idx] + keypoint_idx
    obs_uv = np.concatenate([np.asarray(k, np.float64).reshape(-1, 2) for k in keypoints])[flat]
    obs_scale = np.concatenate([np.asarray(v, np.float64) for v in scales])[flat]
    obs_angle = np.concatenate([np.asarray(v, np.float64) for v in orientations_rad])[flat]
    track_of_obs = np.repeat(np.arange(n_tracks), np.diff(ptr))
    ref = _reference_observations(ptr, track_of_obs, obs_scale)
    is_ref = np.zeros(len(image_idx), bool)
    is_ref[ref] = True
    aligned = np.zeros(len(image_idx), bool)
    r = options.patch_radius
    chunk = max(1, MAX_PATCH_BYTES // (4 * (2 * r + 1) ** 2))
    shifts = []
    for t0 in range(0, n_tracks, chunk):
        t1 = min(t0 + chunk, n_tracks)
        o0, o1 = ptr[t0], ptr[t1]
        patches = np.full((t1 - t0, 2 * r + 1, 2 * r + 1), np.nan, np.float32)
        order, bounds = _group_by(image_idx[ref[t0:t1]], n_img)
        for i in np.flatnonzero(np.diff(bounds)):  # pass 1: the reference patches
            check_interrupt()
            tr = order[bounds[i]:bounds[i + 1]]
            with interrupt_as_keyboard_interrupt():
                patches[tr] = sample_patches(read_image(int(i)), obs_uv[ref[t0 + tr]], r)
            if progress is not None:
                progress(len(tr))
        moving = o0 + np.flatnonzero(~is_ref[o0:o1])
        order, bounds = _group_by(image_idx[moving], n_img)
        for i in np.flatnonzero(np.diff(bounds)):  # pass 2: align every other observation in its image
            check_interrupt()
            obs = moving[order[bounds[i]:bounds[i + 1]]]
            t = track_of_obs[obs]
            ratio = obs_scale[obs] / obs_scale[ref[t]]
            dth = obs_angle[obs] - obs_angle[ref[t]]
            c, s = ratio * np.cos(dth), ratio * np.sin(dth)
            A0 = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
            uv, _, ok = align_patches(read_image(int(i)), patches[t - t0], obs_uv[obs], A0, options)
            refined[i][keypoint_idx[obs[ok]]] = uv[ok]
            aligned[obs[ok]] = True
            shifts.append(np.hypot(*(uv[ok] - obs_uv[obs[ok]]).T))
            stats["num_refined"] += int(ok.sum())
            stats["num_failed"] += int((~ok).sum())
            if progress is not None:
                progress(len(obs))
    if shifts:
        s = np.concatenate(shifts)
        stats["median_shift_px"] = float(np.median(s)) if len(s) else 0.0
    aligned[ref[np.unique(track_of_obs[aligned])]] = True  # a reference with an observation aligned to it
    done = np.flatnonzero(aligned)
    order, bounds = _group_by(image_idx[done], n_img)
    for i in np.flatnonzero(np.diff(bounds)):
        masks[i][keypoint_idx[done[order[bounds[i]:bounds[i + 1]]]]] = True
    return refined, masks, stats
