"""desk-loop (10 hand-held frames round an office desk, back to the start; COLMAP 4.2 builds no
model from it): 9 of its 10 frames in one model with the 01-10 loop closed (issue 14)."""

import numpy as np
import pytest

from geomvision.features import FeatureOptions
from geomvision.sfm import CameraOptions, SfmOptions, run_sfm


@pytest.mark.slow
def test_nine_of_ten_frames_in_one_model_with_the_loop_closed(shared_data, tmp_path):
    """ASIFT (plain SIFT verifies 8 of the 45 pairs), the README's approximate focal length,
    sequential matching. The halves {01, 02, 03, 10} and {04..08} meet only at 04 (no track spans
    it), so their relative scale comes from the depths seen from 04 (before: two models). Measured:
    9 frames (09 cannot be placed: its pairs imply rotations 26-44 degrees apart), 01 and 10 0.025
    of the trajectory length apart and sharing 964 points."""
    opts = SfmOptions(matcher="sequential", camera=CameraOptions(K="520,520,319.5,239.5"),
                      features=FeatureOptions(affine_max_tilt=4, max_num_features=40000))
    res = run_sfm(shared_data / "desk-loop" / "images", opts, cache_dir=tmp_path / "cache", progress=False)
    assert [r.num_registered_images for r in res.reconstructions] == [9]
    rec = res.reconstructions[0]
    poses = {rec.images[i].name: rec.images[i].cam_from_world for i in rec.registered_image_ids}
    assert {"01.png", "10.png"} <= set(poses)
    centres = np.array([poses[n].inverse().t for n in sorted(poses)])
    length = np.sum(np.linalg.norm(np.diff(centres, axis=0), axis=1))
    gap = np.linalg.norm(centres[0] - centres[-1])
    assert gap < 0.05 * length, (gap, length)
    # the loop closed in the model itself: 01 and 10 observe the same points (964 measured), and
    # the whole model reprojects within a pixel
    shared = set(rec.images[rec.image_id_by_name("01.png")].point3D_ids) & set(
        rec.images[rec.image_id_by_name("10.png")].point3D_ids)
    assert len(shared - {-1}) > 500
    _, _, e = rec.reprojection_errors()
    assert np.sqrt(np.mean(e**2)) < 1.0
    merged = res.report["model_merges"]["merged"]
    assert len(merged) == 1 and merged[0]["scale_from_depths"]["hub"] == "04.png"
