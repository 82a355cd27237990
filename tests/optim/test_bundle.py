"""Bundle adjustment on synthetic scenes with exact ground truth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from geomvision import Camera
from geomvision.geometry.rotation import so3_exp
from geomvision.optim import BAConfig, BAOptions, BAProblem, bundle_adjust, flatten_reconstruction, solve_bundle
from geomvision.scene.align import umeyama
from geomvision.synthetic import orbit_scene

NOISE = 0.5


def scene_problem(rng, *, noise=NOISE, outliers=0.0, n_images=8, n_points=400, camera=None):
    # close enough that the points fill the image: focal length and distortion are well determined
    scene = orbit_scene(n_images=n_images, n_points=n_points, radius=3.5, arc_deg=120.0, noise_px=noise,
                        outlier_ratio=outliers, camera=camera, rng=rng)
    cam = scene.camera
    R = np.array([T.R for T in scene.cams_from_world])
    t = np.array([T.t for T in scene.cams_from_world])
    gt = BAProblem.from_arrays(R, t, np.zeros(len(R), int), [cam.model], [cam.params], scene.X_world,
                               scene.obs_image_idx, scene.obs_point_idx, scene.obs_uv)
    return scene, gt


def perturb(problem: BAProblem, rng, *, rot_deg=0.5, centre=0.05, point=0.05, focal=0.02) -> BAProblem:
    p = problem.copy()
    for i in range(p.num_images):
        C = -p.R[i].T @ p.t[i] + rng.normal(scale=centre, size=3)
        p.R[i] = so3_exp(rng.normal(scale=np.radians(rot_deg), size=3)) @ p.R[i]
        p.t[i] = -p.R[i] @ C
    p.X += rng.normal(scale=point, size=p.X.shape)
    p.cam_params[:, 0] *= 1 + focal
    if p.cam_model[0] in (1, 4):  # PINHOLE / OPENCV: fy too
        p.cam_params[:, 1] *= 1 + focal
    return p


def centres(p: BAProblem) -> np.ndarray:
    return -np.einsum("nji,nj->ni", p.R, p.t)


def centre_error(est: BAProblem, gt: BAProblem) -> float:
    s, T = umeyama(centres(est), centres(gt))
    aligned = s * (centres(est) @ T.R.T + T.t)
    return float(np.linalg.norm(aligned - centres(gt), axis=1).mean())


def test_converges_to_the_noise_floor_and_the_ml_estimate(rng):
    _, gt = scene_problem(rng)
    start = perturb(gt, rng)
    assert start.rms_px() > 10 * NOISE
    rep = solve_bundle(start, BAOptions(function_tolerance=1e-10))
    assert rep.converged
    M = gt.num_observations
    n_free = 6 * gt.num_images + 2 + 3 * gt.num_points - 7  # fx, fy free; 7-dof gauge
    expected_rms = NOISE * np.sqrt((2 * M - n_free) / M)
    assert 0.95 * expected_rms < rep.final_rms_px < 1.05 * expected_rms
    # no worse than the truth, and the same optimum as a solve started at the truth
    assert rep.final_rms_px <= gt.rms_px()
    ml = gt.copy()
    solve_bundle(ml, BAOptions(function_tolerance=1e-12, parameter_tolerance=1e-12))
    assert abs(rep.final_rms_px - ml.rms_px()) < 1e-6 * ml.rms_px()
    np.testing.assert_allclose(start.cam_params, ml.cam_params, rtol=1e-5)
    assert centre_error(start, ml) < 1e-5
    # and close to the truth: centre errors far below the 0.05 start perturbation
    assert centre_error(start, gt) < 0.01


def test_log_and_counts(rng):
    _, gt = scene_problem(rng, n_images=4, n_points=100)
    start = perturb(gt, rng)
    lines = []
    rep = solve_bundle(start, BAOptions(), printer=lines.append)
    assert len(rep.log) == rep.iterations and rep.iterations >= rep.successful_iterations >= 1
    assert len(lines) == rep.iterations + 2  # header + iteration 0 + one line per iteration
    costs = [e.cost for e in rep.log]
    assert all(b <= a for a, b in itertools.pairwise(costs))
    assert rep.final_cost < rep.initial_cost
    assert rep.log[-1].rms_px == pytest.approx(rep.final_rms_px)


def test_max_iterations_stops(rng):
    _, gt = scene_problem(rng, n_images=4, n_points=100)
    rep = solve_bundle(perturb(gt, rng), BAOptions(max_iterations=1))
    assert rep.iterations == 1 and rep.termination == "max_iterations"


def two_shared_cameras(p: BAProblem) -> BAProblem:
    """The same problem with two (identical) cameras, each shared by every other image."""
    return BAProblem.from_arrays(p.R, p.t, np.arange(p.num_images) % 2, [p.cam_model[0]] * 2,
                                 [p.cam_params[0], p.cam_params[0]], p.X, p.obs_img, p.obs_pt, p.obs_uv)


@pytest.mark.parametrize("solver", ["sparse/superlu", "sparse/cholmod", "pcg", "iterative"])
def test_sparse_and_pcg_agree_with_dense(solver, rng):
    if solver == "sparse/cholmod":
        pytest.importorskip("sksparse.cholmod", reason="CHOLMOD is optional (scikit-sparse)")
    _, gt = scene_problem(rng, n_images=6, n_points=200)
    start = two_shared_cameras(perturb(gt, rng))
    a, b = start.copy(), start.copy()
    tight = {"function_tolerance": 1e-12, "parameter_tolerance": 1e-12}
    gauge = BAConfig(gauge="two_cameras")  # a unique optimum, so the parameters can be compared
    ra = solve_bundle(a, BAOptions(linear_solver="dense", **tight), gauge)
    kind, _, backend = solver.partition("/")
    rb = solve_bundle(b, BAOptions(linear_solver=kind, sparse_backend=backend or "auto", **tight), gauge)
    assert rb.linear_solver == solver
    assert rb.final_rms_px == pytest.approx(ra.final_rms_px, rel=1e-7)
    np.testing.assert_allclose(b.X, a.X, atol=1e-6)
    np.testing.assert_allclose(b.cam_params, a.cam_params, rtol=1e-6)
    assert not np.allclose(a.cam_params[0], a.cam_params[1], rtol=1e-6)  # two cameras, each its own estimate


@pytest.mark.parametrize("solver", ["auto", "iterative"])
def test_parallel_kernels_agree_with_the_serial_ones(solver, rng):
    _, gt = scene_problem(rng, n_images=6, n_points=300)
    start = perturb(gt, rng)
    a, b = start.copy(), start.copy()
    ra = solve_bundle(a, BAOptions(num_threads=1, linear_solver=solver))
    rb = solve_bundle(b, BAOptions(num_threads=2, parallel_min_observations=0, linear_solver=solver))
    assert ra.iterations == rb.iterations
    assert rb.final_cost == pytest.approx(ra.final_cost, rel=1e-9)
    np.testing.assert_allclose(b.X, a.X, rtol=1e-7, atol=1e-9)


def test_problem_arrays_are_copied(rng):
    _, gt = scene_problem(rng, n_images=3, n_points=60)
    X = gt.X.copy()
    p = BAProblem.from_arrays(gt.R, gt.t, gt.img_cam, gt.cam_model, gt.cam_params, X, gt.obs_img, gt.obs_pt,
                              gt.obs_uv)
    p.X += 0.01
    solve_bundle(p)
    np.testing.assert_array_equal(X, gt.X)


def _true_rms(p: BAProblem, scene) -> float:
    """RMS reprojection error of the estimate against the exact (noise-free) pixels: gauge-free."""
    q = p.copy()
    q.obs_uv = scene.obs_uv_true.copy()
    return q.rms_px()


def _outlier_case(rng):
    scene, gt = scene_problem(rng, outliers=0.10)
    inl = ~scene.obs_is_outlier
    # the reference: maximum likelihood on the inliers alone
    clean = BAProblem.from_arrays(gt.R, gt.t, gt.img_cam, gt.cam_model, gt.cam_params, gt.X, gt.obs_img[inl],
                                  gt.obs_pt[inl], gt.obs_uv[inl])
    solve_bundle(clean, BAOptions())
    clean.obs_img, clean.obs_pt, clean.obs_uv = gt.obs_img, gt.obs_pt, gt.obs_uv
    start = perturb(gt, rng)
    plain = start.copy()
    solve_bundle(plain, BAOptions(max_iterations=100))
    return scene, start, _true_rms(clean, scene), _true_rms(plain, scene)


def test_cauchy_loss_with_ten_percent_outliers_stays_within_the_noise(rng):
    scene, start, clean_err, plain_err = _outlier_case(rng)
    solve_bundle(start, BAOptions(loss="cauchy", loss_scale=1.0, max_iterations=100))
    err = _true_rms(start, scene)
    assert err < NOISE and err < 1.25 * clean_err
    assert plain_err > 20 * NOISE  # the squared loss is ruined by the outliers
    inl = ~scene.obs_is_outlier
    assert np.sqrt(np.mean(start.sq_errors()[inl])) < 1.1 * NOISE * np.sqrt(2)


@pytest.mark.parametrize("loss", ["huber", "soft_l1"])
def test_bounded_influence_losses_reduce_the_damage_of_outliers(loss, rng):
    """Huber and soft-L1 bound an outlier's influence but do not redescend: with 10 % gross
    outliers they land far closer to the truth than the squared loss, not at the noise floor."""
    scene, start, _, plain_err = _outlier_case(rng)
    solve_bundle(start, BAOptions(loss=loss, loss_scale=1.0, max_iterations=100))
    assert _true_rms(start, scene) < 0.25 * plain_err


def test_fixed_parameters_stay_fixed(rng):
    _, gt = scene_problem(rng, n_images=6, n_points=200)
    start = perturb(gt, rng)
    # held parameters at their true values, so the rest can still fit the data
    start.R[[1, 4]], start.t[[1, 4]], start.X[[0, 5, 17]] = gt.R[[1, 4]], gt.t[[1, 4]], gt.X[[0, 5, 17]]
    start.cam_params[0, 1] = gt.cam_params[0, 1]
    before = start.copy()
    cfg = BAConfig(fixed_images=(1, 4), fixed_points=(0, 5, 17), fixed_params={0: ("fy",)})
    rep = solve_bundle(start, BAOptions(), cfg)
    assert rep.final_rms_px < 0.1 * rep.initial_rms_px
    for i in (1, 4):
        np.testing.assert_array_equal(start.R[i], before.R[i])
        np.testing.assert_array_equal(start.t[i], before.t[i])
    np.testing.assert_array_equal(start.X[[0, 5, 17]], before.X[[0, 5, 17]])
    # fy held, cx, cy held by default (refine_principal_point=False), fx refined
    np.testing.assert_array_equal(start.cam_params[0, 1:4], before.cam_params[0, 1:4])
    assert start.cam_params[0, 0] != before.cam_params[0, 0]
    assert not np.array_equal(start.R[0], before.R[0]) and not np.array_equal(start.X[1], before.X[1])


def test_intrinsics_and_poses_can_all_be_held(rng):
    _, gt = scene_problem(rng, n_images=5, n_points=150)
    start = perturb(gt, rng, focal=0.0)
    before = start.copy()
    solve_bundle(start, BAOptions(), BAConfig(refine_poses=False, refine_focal_length=False, refine_extra_params=False))
    np.testing.assert_array_equal(start.R, before.R)
    np.testing.assert_array_equal(start.t, before.t)
    np.testing.assert_array_equal(start.cam_params, before.cam_params)
    assert not np.array_equal(start.X, before.X)


def test_gauge_two_cameras_holds_first_pose_and_scale(rng):
    _, gt = scene_problem(rng, n_images=6, n_points=200)
    start = perturb(gt, rng)
    free = start.copy()
    rf = solve_bundle(free, BAOptions(function_tolerance=1e-12, parameter_tolerance=1e-12))
    before = start.copy()
    rg = solve_bundle(start, BAOptions(function_tolerance=1e-12, parameter_tolerance=1e-12), BAConfig(gauge="two_cameras"))
    np.testing.assert_array_equal(start.R[0], before.R[0])
    np.testing.assert_array_equal(start.t[0], before.t[0])
    assert np.sum(start.t[1] == before.t[1]) == 1  # one translation coordinate of image 1 fixes the scale
    assert rg.final_rms_px == pytest.approx(rf.final_rms_px, rel=1e-6)
    assert rg.num_reduced_parameters == rf.num_reduced_parameters - 7


def test_shared_intrinsics_stay_shared_through_a_reconstruction(rng):
    """Two cameras, each shared by four images, with different focal lengths and distortion."""
    cam_a = Camera("SIMPLE_RADIAL", 640, 480, [450.0, 319.5, 239.5, -0.05])
    cam_b = Camera("SIMPLE_RADIAL", 640, 480, [560.0, 319.5, 239.5, 0.03])
    scene = orbit_scene(n_images=8, n_points=800, radius=3.5, arc_deg=120.0, noise_px=0.3, camera=cam_a, rng=rng)
    rec = scene.to_reconstruction()
    # re-render images 5..8 with camera B
    cid_b = rec.add_camera(cam_b, camera_id=2)
    from geomvision.geometry.projection import project_points

    for iid in (5, 6, 7, 8):
        img = rec.images[iid]
        img.camera_id = cid_b
        m = img.point3D_ids >= 0
        xyz = np.array([rec.points3D[int(p)].xyz for p in img.point3D_ids[m]])
        uv, _ = project_points(xyz, cam_b, img.cam_from_world)
        img.keypoints[m] = uv + rng.normal(scale=0.3, size=uv.shape)
    rec.cameras[1] = cam_a.with_params([440.0, 319.5, 239.5, 0.0])
    rec.cameras[2] = cam_b.with_params([575.0, 319.5, 239.5, 0.0])
    for pt in rec.points3D.values():
        pt.xyz = pt.xyz + rng.normal(scale=0.01, size=3)
    rep = bundle_adjust(rec, BAOptions(function_tolerance=1e-10))
    assert rep.final_rms_px < 0.5
    assert len(rec.cameras) == 2
    assert {rec.images[i].camera_id for i in (1, 2, 3, 4)} == {1}
    assert {rec.images[i].camera_id for i in (5, 6, 7, 8)} == {2}
    np.testing.assert_allclose(rec.cameras[1].params[[0, 3]], [450.0, -0.05], rtol=0.01, atol=5e-3)
    np.testing.assert_allclose(rec.cameras[2].params[[0, 3]], [560.0, 0.03], rtol=0.01, atol=5e-3)
    flat, _ = flatten_reconstruction(rec)
    assert flat.problem.num_cameras == 2 and flat.problem.rms_px() == pytest.approx(rep.final_rms_px)


def test_local_bundle_adjustment_holds_other_images(rng):
    scene = orbit_scene(n_images=6, n_points=300, noise_px=0.3, rng=rng)
    rec = scene.to_reconstruction()
    for pt in rec.points3D.values():
        pt.xyz = pt.xyz + rng.normal(scale=0.02, size=3)
    held = {i: rec.images[i].cam_from_world for i in (1, 2, 3, 4)}
    cam_before = rec.cameras[1]
    rep = bundle_adjust(rec, BAOptions(), BAConfig(refine_focal_length=False, refine_extra_params=False),
                        image_ids=[5, 6])
    assert rep.final_rms_px < rep.initial_rms_px
    for i, T in held.items():
        assert rec.images[i].cam_from_world.allclose(T, atol=0)
    assert rec.cameras[1] == cam_before
    assert rep.num_free_images == 2


def test_fixed_ids_in_a_reconstruction(rng):
    scene = orbit_scene(n_images=5, n_points=200, noise_px=0.3, rng=rng)
    rec = scene.to_reconstruction()
    pid = sorted(rec.points3D)[3]
    xyz = rec.points3D[pid].xyz + 0.05
    rec.points3D[pid].xyz = xyz.copy()
    T3 = rec.images[3].cam_from_world
    bundle_adjust(rec, BAOptions(), BAConfig(fixed_images=[3], fixed_points=[pid], fixed_cameras=[1]))
    np.testing.assert_array_equal(rec.points3D[pid].xyz, xyz)
    assert rec.images[3].cam_from_world.allclose(T3, atol=0)
    assert rec.cameras[1] == scene.camera
    with pytest.raises(ValueError, match="image id 77 does not exist"):
        bundle_adjust(rec, BAOptions(), BAConfig(fixed_images=[77]))


@pytest.mark.parametrize("model", ["PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV"])
def test_every_model_refines_its_intrinsics(model, rng):
    params = {"PINHOLE": [500.0, 505.0, 319.5, 239.5], "SIMPLE_RADIAL": [500.0, 319.5, 239.5, -0.04],
              "RADIAL": [500.0, 319.5, 239.5, -0.04, 0.01],
              "OPENCV": [500.0, 505.0, 319.5, 239.5, -0.04, 0.01, 0.001, -0.001]}[model]
    cam = Camera(model, 640, 480, params)
    scene, gt = scene_problem(rng, camera=cam, noise=0.2, n_points=600)
    start = perturb(gt, rng, focal=0.01)
    start.cam_params[0, cam.num_affine_params:] = 0.0
    tight = BAOptions(function_tolerance=1e-12, parameter_tolerance=1e-12)
    cfg = BAConfig(refine_principal_point=True)
    rep = solve_bundle(start, tight, cfg)
    assert rep.final_rms_px < 0.3
    # the maximum-likelihood estimate (the solve started at the truth), and within the noise of the truth
    ml = gt.copy()
    solve_bundle(ml, tight, cfg)
    np.testing.assert_allclose(start.cam_params, ml.cam_params, rtol=1e-4, atol=1e-6)
    assert _true_rms(start, scene) < 0.2


def test_bad_input_raises(rng):
    _, gt = scene_problem(rng, n_images=3, n_points=50)
    p = gt.copy()
    p.X[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        solve_bundle(p)
    p = gt.copy()
    j = int(p.obs_pt[0])
    i = int(p.obs_img[0])
    p.X[j] = -p.R[i].T @ p.t[i] - 3.0 * p.R[i][2]  # 3 units behind image i
    with pytest.raises(ValueError, match="behind"):
        solve_bundle(p)
    p = gt.copy()
    p.obs_pt[4] = p.num_points
    with pytest.raises(ValueError, match="obs_pt"):
        solve_bundle(p)
    with pytest.raises(ValueError, match="linear_solver"):
        BAOptions(linear_solver="qr")
    with pytest.raises(ValueError, match="gauge"):
        BAConfig(gauge="three_points")
    with pytest.raises(ValueError, match="fixed_images"):
        solve_bundle(gt.copy(), BAOptions(), BAConfig(fixed_images=[99]))
    with pytest.raises(ValueError, match="no parameter"):
        solve_bundle(gt.copy(), BAOptions(), BAConfig(fixed_params={0: ("k9",)}))


def test_image_pair_structures_agree(rng):
    """The bitmap of co-observing image pairs (small problems) and the list of codes (problems
    with more than 8192 images) describe the same pairs."""
    from geomvision.optim import _schur_kernels as sk

    n_img, n_pts = 7, 40
    obs_img = rng.integers(0, n_img, 200)
    obs_pt = rng.integers(0, n_pts, 200)
    order = np.argsort(obs_pt, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(obs_pt, minlength=n_pts))])
    free = rng.random(n_pts) < 0.7
    mark = np.zeros((n_img, n_img), bool)
    sk.mark_image_pairs(ptr, order, obs_img, free, mark)
    codes = np.unique(sk.co_observing_image_pairs(ptr, order, obs_img, free, n_img))
    np.testing.assert_array_equal(np.flatnonzero(mark.ravel()), codes)
    # brute force
    expect = {(i, i) for i in obs_img}
    for j in np.flatnonzero(free):
        imgs = obs_img[obs_pt == j]
        expect |= {(min(a, b), max(a, b)) for a in imgs for b in imgs}
    assert set(zip(*np.nonzero(mark))) == expect
