"""Renderer benchmark: speed and feature quality of the demo scene, and exact depth vs a peer.

Run: .venv/bin/python benchmarks/render_demo.py [--quick]

1. Builds the demo scene, renders the orbit views (800x600, 2x2 supersampling) and times them.
2. OpenCV SIFT (4000 features) per view; ratio-0.8 matches between neighbouring views scored
   against the ground-truth fundamental matrix (Sampson distance): matches, share within 1 px,
   median distance. Same for the rotation sequence against the true homographies.
3. Peer: Open3D's RaycastingScene (Embree BVH over triangles; spheres and cylinders
   tessellated) casts the same pixel-centre rays as ``render_depth``: time ratio and depth
   agreement (flat faces must agree to rounding; curved ones to the tessellation error).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numba
import numpy as np

from geomvision.geometry.epipolar import fundamental_from_pose, homography_transfer_sq_errors, sampson_sq_errors
from geomvision.synthetic import (
    Box,
    Cylinder,
    Quad,
    Sphere,
    demo_camera,
    demo_scene,
    orbit_cameras,
    render_depth,
    render_image,
    rotation_sequence,
)


def sift_features(images):
    sift = cv2.SIFT_create(4000)
    out = []
    for im in images:
        kp, desc = sift.detectAndCompute(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), None)
        out.append((np.array([k.pt for k in kp]), desc))
    return out


def ratio_matches(f1, f2, ratio=0.8):
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(f1[1], f2[1], k=2)
    good = [m for m, n in knn if m.distance < ratio * n.distance]
    return f1[0][[m.queryIdx for m in good]], f2[0][[m.trainIdx for m in good]]


def open3d_depth(scene, camera, cam_from_world):
    """Depth of the pixel-centre rays from Open3D's ray casting of the tessellated scene."""
    import open3d as o3d

    rc = o3d.t.geometry.RaycastingScene()
    for s in scene.shapes:
        if isinstance(s, Quad):
            sx, sy = s.dims[:2]
            mesh = o3d.geometry.TriangleMesh(
                o3d.utility.Vector3dVector(
                    [[-sx / 2, -sy / 2, 0], [sx / 2, -sy / 2, 0], [sx / 2, sy / 2, 0], [-sx / 2, sy / 2, 0]]
                ),
                o3d.utility.Vector3iVector([[0, 1, 2], [0, 2, 3]]),
            )
        elif isinstance(s, Box):
            mesh = o3d.geometry.TriangleMesh.create_box(*s.dims).translate((-s.dims[0] / 2, -s.dims[1] / 2, 0.0))
        elif isinstance(s, Cylinder):
            mesh = o3d.geometry.TriangleMesh.create_cylinder(s.dims[0], s.dims[1], resolution=256, split=1)
            mesh = mesh.translate((0.0, 0.0, s.dims[1] / 2))
        elif isinstance(s, Sphere):
            mesh = o3d.geometry.TriangleMesh.create_sphere(s.dims[0], resolution=128)
        mesh.transform(s.world_from_object.matrix4x4)
        rc.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    world_from_cam = cam_from_world.inverse()
    u, v = np.meshgrid(np.arange(camera.width, dtype=float), np.arange(camera.height, dtype=float))
    d_cam = camera.cam_from_img(np.column_stack([u.ravel(), v.ravel()]))  # z = 1: t_hit is depth
    rays = np.hstack([np.repeat(world_from_cam.t[None], len(d_cam), 0), world_from_cam.apply_rotation(d_cam)])
    rays_t = o3d.core.Tensor(rays.astype(np.float32))
    t0 = time.perf_counter()
    hit = rc.cast_rays(rays_t)
    elapsed = time.perf_counter() - t0
    return hit["t_hit"].numpy().reshape(camera.height, camera.width).astype(np.float64), elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 views at 400x300")
    args = ap.parse_args()
    n, (w, h) = (4, (400, 300)) if args.quick else (12, (800, 600))

    t0 = time.perf_counter()
    scene = demo_scene(0)
    t_scene = time.perf_counter() - t0
    camera = demo_camera(w, h)
    poses = orbit_cameras(12)[:n] if args.quick else orbit_cameras(n)
    render_image(scene, demo_camera(32, 24), poses[0])  # compile / load the numba cache
    t0, c0 = time.perf_counter(), time.process_time()
    images = [render_image(scene, camera, T) for T in poses]
    t_render, c_render = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
    print(f"demo scene: {len(scene.shapes)} shapes, built in {t_scene:.2f} s")
    print(
        f"render: {n} views of {w}x{h}, 2x2 supersampling: {t_render:.3f} s per view ({n * t_render:.2f} s total), "
        f"{c_render:.3f} CPU s per view on {numba.get_num_threads()} threads"
    )

    feats = sift_features(images)
    print(f"SIFT features per view: {[len(f[0]) for f in feats]}")
    print(f"{'pair':>6} {'matches':>8} {'<1px':>6} {'ratio':>6} {'median px':>10}")
    for i in range(n - 1):
        x1, x2 = ratio_matches(feats[i], feats[i + 1])
        F = fundamental_from_pose(poses[i + 1] @ poses[i].inverse(), camera, camera)
        d = np.sqrt(sampson_sq_errors(F, x1, x2))
        print(
            f"{i:>2}-{i + 1:<3} {len(d):>8} {np.count_nonzero(d < 1):>6} {np.mean(d < 1):>6.3f} {np.median(d):>10.3f}"
        )

    seq = rotation_sequence(3 if args.quick else 5, width=w, height=h, scene=scene)
    sf = sift_features(seq.images)
    print("rotation sequence (true homographies):")
    for i in range(len(sf) - 1):
        x1, x2 = ratio_matches(sf[i], sf[i + 1])
        e = np.sqrt(homography_transfer_sq_errors(seq.homography(i, i + 1), x1, x2))
        print(f"  {i}-{i + 1}: {len(e)} matches, {np.count_nonzero(e < 1)} within 1 px, median {np.median(e):.3f} px")

    render_depth(scene, camera, poses[0])
    t0 = time.perf_counter()
    depth, idx = render_depth(scene, camera, poses[0])
    t_ours = time.perf_counter() - t0
    try:
        depth_o3d, t_o3d = open3d_depth(scene, camera, poses[0])
    except ImportError:
        print("open3d not installed: peer comparison skipped")
        return
    both = np.isfinite(depth) & np.isfinite(depth_o3d)
    agree = np.mean(np.isfinite(depth) == np.isfinite(depth_o3d))
    flat = both & np.isin(idx, [k for k, s in enumerate(scene.shapes) if isinstance(s, (Quad, Box))])
    curved = both & ~flat
    rel = np.zeros_like(depth)
    rel[both] = np.abs(depth[both] - depth_o3d[both]) / depth[both]
    print(f"\n{'depth, 1 ray/pixel':<34} {'ours':>10} {'open3d':>10} {'ratio':>8}")
    print(f"{'time (s)':<34} {t_ours:>10.4f} {t_o3d:>10.4f} {t_ours / t_o3d:>8.2f}")
    print(f"hit/miss agreement: {agree:.5f}")
    print(f"flat faces: median rel. depth diff {np.median(rel[flat]):.2e}, 99.9% {np.percentile(rel[flat], 99.9):.2e}")
    med, p999 = np.median(rel[curved]), np.percentile(rel[curved], 99.9)
    print(f"curved (tessellated by open3d): median {med:.2e}, 99.9% {p999:.2e}")


if __name__ == "__main__":
    main()
