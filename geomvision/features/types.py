"""The ``Features`` of one image: keypoints, their scale and orientation, descriptors and colours."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .._validation import as_array

_FIELDS = ("keypoints", "scales", "orientations_rad", "descriptors", "colors")


@dataclass(eq=False)
class Features:
    """Local features of one image, one row per feature.

    keypoints : (N,2) float64 pixels (u, v); (0, 0) is the centre of the top-left pixel.
    scales : (N,) float64 detection scale sigma in pixels of the image (OpenCV ``size / 2``).
    orientations_rad : (N,) float64 dominant gradient direction in [0, 2 pi), measured in the
        image frame (u right, v down): direction ``(cos a, sin a)`` in (u, v). 0 when upright.
    descriptors : (N,D) uint8 (SIFT: D = 128; RootSIFT scaled by 512 and rounded) or float32.
    colors : (N,3) uint8 RGB of the pixel nearest to each keypoint.
    """

    keypoints: np.ndarray
    scales: np.ndarray
    orientations_rad: np.ndarray
    descriptors: np.ndarray
    colors: np.ndarray

    def __post_init__(self) -> None:
        self.keypoints = as_array(self.keypoints, "keypoints", (None, 2))
        n = len(self.keypoints)
        self.scales = as_array(self.scales, "scales", (n,))
        self.orientations_rad = as_array(self.orientations_rad, "orientations_rad", (n,))
        d = np.asarray(self.descriptors)
        if d.dtype not in (np.uint8, np.float32):
            raise ValueError(f"descriptors must be uint8 or float32, got {d.dtype}")
        if d.ndim != 2 or len(d) != n or (n and d.shape[1] == 0):
            raise ValueError(f"descriptors must have shape ({n}, D) to match {n} keypoints, got {d.shape}")
        self.descriptors = as_array(d, "descriptors", (n, d.shape[1]), dtype=d.dtype)
        self.colors = as_array(self.colors, "colors", (n, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.keypoints)

    def __repr__(self) -> str:
        return f"Features(n={len(self)}, descriptors={self.descriptors.dtype}[{self.descriptors.shape[1]}])"

    def subset(self, idx) -> Features:
        """The features at ``idx`` (index array or boolean mask), in that order."""
        idx = np.asarray(idx)
        return Features(*(getattr(self, f)[idx] for f in _FIELDS))

    def equals(self, other: Features) -> bool:
        """True when every array is identical (same dtype, shape and values)."""
        return all(
            getattr(self, f).dtype == getattr(other, f).dtype and np.array_equal(getattr(self, f), getattr(other, f))
            for f in _FIELDS
        )

    def descriptor_digest(self) -> str:
        """sha256 hex digest of the descriptors (dtype, shape and bytes); names them in match caches."""
        h = hashlib.sha256()
        h.update(f"{self.descriptors.dtype.str}{self.descriptors.shape}".encode())
        h.update(np.ascontiguousarray(self.descriptors).data)
        return h.hexdigest()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays by field name (what the cache stores)."""
        return {f: getattr(self, f) for f in _FIELDS}

    @classmethod
    def from_arrays(cls, arrays) -> Features:
        """Inverse of :meth:`to_arrays`; ``ValueError`` when a field is missing or malformed."""
        missing = [f for f in _FIELDS if f not in arrays]
        if missing:
            raise ValueError(f"feature arrays lack {missing}")
        return cls(*(arrays[f] for f in _FIELDS))


class StreamedFeatures(Features):
    """Features whose descriptors stay where they are stored (an on-disk cache entry) and are
    read back on each access of ``descriptors`` through ``load()``; keypoints, scales,
    orientations and colours stay in memory (40 bytes a feature against 128 for SIFT's
    descriptors). ``base`` gives every array (its descriptors are not kept); ``load`` is a
    picklable callable returning them ((N, D), ``base``'s dtype). Everything else behaves as
    :class:`Features` (``subset`` returns in-memory Features)."""

    def __init__(self, base: Features, load) -> None:  # not the dataclass's: descriptors is a property here
        self.keypoints = base.keypoints
        self.scales = base.scales
        self.orientations_rad = base.orientations_rad
        self.colors = base.colors
        self._load = load
        self._descriptor_spec = (base.descriptors.dtype, base.descriptors.shape)
        self._digest: str | None = None

    @property
    def descriptors(self) -> np.ndarray:
        d = self._load()
        if (d.dtype, d.shape) != self._descriptor_spec:
            raise ValueError(f"the stored descriptors changed: {d.dtype}{d.shape}, expected "
                             f"{self._descriptor_spec[0]}{self._descriptor_spec[1]} (rerun the feature extraction)")
        return d

    def __repr__(self) -> str:
        dtype, shape = self._descriptor_spec
        return f"StreamedFeatures(n={len(self)}, descriptors={dtype}[{shape[1]}])"

    def descriptor_digest(self) -> str:
        if self._digest is None:
            self._digest = super().descriptor_digest()
        return self._digest
