"""Two-view figures: matches and epipolar lines drawn from real fountain-P11 data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomvision.geometry import Camera, fundamental_from_pose, sampson_sq_errors
from geomvision.viz.pairs import (
    best_pair,
    epipolar_segments,
    pair_correspondences,
    pair_fundamental,
    plot_epipolar_lines,
    plot_matches,
    undistort_image,
)

from .real_model import detect_sift, ratio_matches


@pytest.fixture(scope="module")
def fountain_pair(fountain, fountain_model):
    """RGB images, ratio-test SIFT matches and the ground-truth F of fountain images 4 and 5."""
    _, images = fountain_model
    n1, n2 = "0004.jpg", "0005.jpg"
    k1, d1 = detect_sift(images["grey"][n1])
    k2, d2 = detect_sift(images["grey"][n2])
    m = ratio_matches(d1, d2)
    T = fountain.cams_from_world[n2] @ fountain.cams_from_world[n1].inverse()
    F = fundamental_from_pose(T, fountain.cameras[n1], fountain.cameras[n2])
    return images["rgb"][n1], images["rgb"][n2], k1[m[:, 0]], k2[m[:, 1]], F


def _segment_distance(seg, p):
    a, b = seg
    length_sq = (b - a) @ (b - a)
    if length_sq == 0:  # a line touching the image in one corner only
        return np.linalg.norm(a - p)
    t = np.clip((p - a) @ (b - a) / length_sq, 0, 1)
    return np.linalg.norm(a + t * (b - a) - p)


def test_epipolar_lines_pass_through_the_matches_on_real_images(fountain_pair):
    img1, img2, x1, x2, F = fountain_pair
    inl = sampson_sq_errors(F, x1, x2) < 1.0
    assert inl.mean() > 0.6
    x1, x2 = x1[inl], x2[inl]
    fig = plot_epipolar_lines(img1, img2, x1, x2, F, num_lines=10)
    ax1, ax2 = fig.axes
    h, w = img2.shape[:2]
    for ax, x in ((ax1, x1), (ax2, x2)):
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        marks = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
        assert len(lines) == len(marks) == 10
        for ln, mk in zip(lines, marks):
            seg = np.array(ln.get_xydata())
            p = np.array(mk.get_xydata())[0]
            assert np.min(np.linalg.norm(x - p, axis=1)) == 0.0  # the marker is a real keypoint
            assert _segment_distance(seg, p) < 2.0  # GT epipolar geometry: x lies on its line
            on_border = (np.abs(seg[:, 0] + 0.5) < 1e-6) | (np.abs(seg[:, 0] - (w - 0.5)) < 1e-6) | \
                        (np.abs(seg[:, 1] + 0.5) < 1e-6) | (np.abs(seg[:, 1] - (h - 0.5)) < 1e-6)
            assert on_border.all()  # drawn from border to border
    title = fig._suptitle.get_text()
    median = float(title.split("median ")[1].split(" px")[0])
    assert median < 0.5  # SIFT at half resolution against the ground truth


def test_wrong_f_is_visible_in_the_reported_distances(fountain_pair):
    img1, img2, x1, x2, F = fountain_pair
    inl = sampson_sq_errors(F, x1, x2) < 1.0
    F_wrong = F.T  # the epipolar geometry of the swapped pair
    fig = plot_epipolar_lines(img1, img2, x1[inl], x2[inl], F_wrong)
    assert float(fig._suptitle.get_text().split("median ")[1].split(" px")[0]) > 5.0


def test_match_lines_join_the_matched_pixels(fountain_pair):
    img1, img2, x1, x2, F = fountain_pair
    inl = sampson_sq_errors(F, x1, x2) < 1.0
    fig = plot_matches(img1, img2, x1, x2, inliers=inl, max_lines=len(x1))
    ax = fig.axes[0]
    w1 = img1.shape[1]
    green, red = (ln for ln in ax.get_lines() if ln.get_linestyle() == "-")
    for ln, mask in ((green, inl), (red, ~inl)):
        xy = np.array(ln.get_xydata()).reshape(-1, 3, 2)[:, :2]  # (start, end) per match, NaN separators
        np.testing.assert_allclose(xy[:, 0], x1[mask])
        np.testing.assert_allclose(xy[:, 1], x2[mask] + [w1, 0])
    assert f"{len(x1)} matches, {inl.sum()} inliers" in ax.get_title()
    few = plot_matches(img1, img2, x1, x2, max_lines=25)
    assert "(25 drawn)" in few.axes[0].get_title()


@settings(max_examples=60, deadline=None)
@given(
    u=st.floats(-0.5, 639.5), v=st.floats(-0.5, 479.5), angle=st.floats(0, np.pi),
)
def test_segments_cover_the_line_inside_the_image(u, v, angle):
    a, b = -np.sin(angle), np.cos(angle)  # line through (u, v) with direction (cos, sin)
    line = np.array([[a, b, -(a * u + b * v)]])
    seg = epipolar_segments(line, 640, 480)[0]
    assert np.isfinite(seg).all()
    assert np.all((seg[:, 0] >= -0.5 - 1e-6) & (seg[:, 0] <= 639.5 + 1e-6))
    assert np.all((seg[:, 1] >= -0.5 - 1e-6) & (seg[:, 1] <= 479.5 + 1e-6))
    np.testing.assert_allclose(seg @ line[0, :2] + line[0, 2], 0.0, atol=1e-6)  # on the line
    assert _segment_distance(seg, np.array([u, v])) < 1e-6  # the point inside lies on the segment


def test_lines_missing_the_image_give_nan():
    seg = epipolar_segments(np.array([[1.0, 0.0, 1000.0], [0.0, 1.0, -479.0]]), 640, 480)
    assert np.isnan(seg[0]).all()
    np.testing.assert_allclose(seg[1], [[-0.5, 479.0], [639.5, 479.0]])


def test_pair_helpers_on_the_real_model(fountain_model, fountain):
    rec, _ = fountain_model
    i, j = best_pair(rec)
    shared = {(a, b): len(set(rec.images[a].point3D_ids[rec.images[a].point3D_ids >= 0])
                          & set(rec.images[b].point3D_ids[rec.images[b].point3D_ids >= 0]))
              for a in rec.images for b in rec.images if a < b}
    assert shared[(i, j)] == max(shared.values())
    x1, x2 = pair_correspondences(rec, i, j)
    assert len(x1) == shared[(i, j)]
    F = pair_fundamental(rec, i, j)
    n1, n2 = rec.images[i].name, rec.images[j].name
    T = fountain.cams_from_world[n2] @ fountain.cams_from_world[n1].inverse()
    F_gt = fundamental_from_pose(T, fountain.cameras[n1], fountain.cameras[n2])
    np.testing.assert_allclose(F / np.linalg.norm(F), F_gt / np.linalg.norm(F_gt), atol=1e-9)
    assert np.median(np.sqrt(sampson_sq_errors(F, x1, x2))) < 0.5


def test_undistort_image_moves_a_dot_to_its_pinhole_position():
    cam = Camera("SIMPLE_RADIAL", 200, 160, [150.0, 99.5, 79.5, -0.25])
    X = np.array([[0.45, -0.3, 1.0]])
    uv_dist = cam.img_from_cam(X)[0]
    uv_pin = (X @ cam.K.T)[0, :2]
    assert np.linalg.norm(uv_dist - uv_pin) > 5  # strong enough to see
    yy, xx = np.mgrid[0:160, 0:200]
    img = (255 * np.exp(-((xx - uv_dist[0]) ** 2 + (yy - uv_dist[1]) ** 2) / 4.0)).astype(np.uint8)
    out = undistort_image(img, cam).astype(float)
    centroid = np.array([(out * xx).sum(), (out * yy).sum()]) / out.sum()
    np.testing.assert_allclose(centroid, uv_pin, atol=0.3)
    pinhole = Camera("PINHOLE", 200, 160, [150.0, 150.0, 99.5, 79.5])
    assert undistort_image(img, pinhole) is img


def test_pair_argument_errors(fountain_pair):
    img1, img2, x1, x2, F = fountain_pair
    with pytest.raises(ValueError, match="same number of rows"):
        plot_matches(img1, img2, x1, x2[:-1])
    with pytest.raises(ValueError, match="image1"):
        plot_epipolar_lines(np.zeros((3, 4, 5)), img2, x1, x2, F)
    with pytest.raises(ValueError, match="F must have shape"):
        plot_epipolar_lines(img1, img2, x1, x2, np.eye(2))
    with pytest.raises(ValueError, match="inliers"):
        plot_matches(img1, img2, x1, x2, inliers=np.ones(3, bool))
