"""The result of an SfM run (``SfmResult``) and its report: what happened per image, pair and stage.

``build_report`` turns the stages' outputs into the JSON-able ``report`` dict that ``geomvision
sfm`` / ``map`` write as ``report.json``; the reasons a run builds no model (``ROTATION_ONLY``,
``PLANE_UNCALIBRATED``) are named here so that the stages and the CLI say them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..scene.reconstruction import Reconstruction


class SfmWarning(UserWarning):
    """Something the user should know about a run (a guessed focal length, skipped files)."""


ROTATION_ONLY = "the camera only rotated: no 3-D structure; use `geomvision stitch`"
PLANE_UNCALIBRATED = ("the scene is a plane and the views of it do not fix the focal length: give --K "
                      "(or images with an EXIF focal length)")


@dataclass
class SfmResult:
    reconstructions: list[Reconstruction]
    report: dict = field(default_factory=dict)


def build_report(image_dir, names, ex, geoms, tracks, n_refused, mapper, masks, recs, options, verified,
                 refinement, timings, failure=None) -> dict:
    """The report of a run (``report.json``): ``ex`` the features (``ExtractionResult``), ``verified``
    the match stage (``VerifiedPairs``: matcher, retrieval, intrinsics sources, self-calibration, K
    check), the tracks, the mapper and its models (``masks``, ``recs``), timings in seconds."""
    sources, self_calibration, K_check = verified.sources, verified.self_calibration, verified.K_check
    model_of = {}
    for m, mask in enumerate(masks):
        for k in np.flatnonzero(mask):
            model_of[int(k)] = m
    per_image = {}
    n_pairs = np.zeros(len(names), dtype=int)
    for (i, j), g in geoms.items():
        if g.verified:
            n_pairs[i] += 1
            n_pairs[j] += 1
    for k, n in enumerate(names):
        if k in model_of:
            per_image[n] = {"registered": True, "model": model_of[k], "num_features": len(ex.features[n].keypoints)}
        else:
            why = mapper.log.registration.get(k)
            if failure is not None:
                why = ROTATION_ONLY if failure.startswith(ROTATION_ONLY) else PLANE_UNCALIBRATED
            elif why is None:
                why = "no verified pair with another image" if n_pairs[k] == 0 else "not reached by the mapper"
            elif why.startswith("registered"):
                why = "its model was too small (fewer than min_model_size images)"
            per_image[n] = {"registered": False, "reason": why, "num_features": len(ex.features[n].keypoints)}
    models = []
    for m, rec in enumerate(recs):
        s = rec.summary()
        models.append({"index": m, **s, "cameras": {int(c): cam.to_dict() for c, cam in rec.cameras.items()}})
    return {
        "image_dir": str(Path(image_dir).resolve()),
        "num_images": len(names) + len(ex.skipped),
        "num_readable_images": len(names),
        "skipped_files": dict(ex.skipped),
        "matcher": verified.matcher,
        # why that matcher, and the images' GPS positions when pair selection read them
        "matcher_reason": verified.matcher_reason or None,
        "gps": verified.gps,
        "num_pairs_matched": len(geoms),
        "num_pairs_verified": int(sum(g.verified for g in geoms.values())),
        "pair_configs": {c: int(sum(g.config == c for g in geoms.values()))
                         for c in ("calibrated", "uncalibrated", "planar", "panoramic", "failed")},
        "pairs": {f"{names[i]} {names[j]}": {"config": g.config, "num_matches": g.num_matches,
                                              "num_inliers": g.num_inliers, "num_h_inliers": g.num_h_inliers,
                                              **({"rotation_focal_px": round(g.rotation_focal_px, 1)}
                                                 if np.isfinite(g.rotation_focal_px) else {}),
                                              **({"message": g.message} if g.message else {})}
                  for (i, j), g in geoms.items()},
        # why no model was built when the input cannot give one (every pair a pure rotation)
        "failure": failure,
        # the pairs proposed by VLAD retrieval (loop candidates beyond the sequential window, or
        # every pair of the retrieval matcher) and what two-view verification made of them
        "retrieval_pairs": [{"pair": [names[i], names[j]], "similarity": round(s, 4),
                             "verified": bool(geoms[(i, j)].verified), "num_inliers": geoms[(i, j)].num_inliers,
                             "config": geoms[(i, j)].config}
                            for (i, j), s in sorted(verified.retrieved.items())],
        "num_tracks": tracks.num_tracks,
        "num_track_merges_refused": n_refused,
        "keypoint_refinement": refinement,
        "intrinsics_source": sources,
        "self_calibration": {str(k): v for k, v in self_calibration.items()},
        # each given K against the focal length its images' fundamental matrices imply
        "K_check": {str(k): v for k, v in (K_check or {}).items()},
        "models": models,
        "num_registered_images": int(sum(len(r.registered_image_ids) for r in recs)),
        "images": per_image,
        "initial_pairs": [{**e, "pair": [names[e["pair"][0]], names[e["pair"][1]]]} for e in mapper.log.initial_pairs],
        "bundle_adjustments": mapper.log.bundle_adjustments,
        # models moved into another during mapping (the evidence that fixed the similarity: the
        # 2D-3D correspondences across them, or the depths seen from the image their pairs meet
        # at) and the merges refused, with why
        "model_merges": {"merged": mapper.log.merges, "refused": mapper.log.merge_refusals},
        "timings_s": {**{k: round(v, 3) for k, v in timings.items()},
                      **{f"mapping.{k}": round(v, 3) for k, v in mapper.log.timings.items()}},
        "options": options.to_dict(),
    }

