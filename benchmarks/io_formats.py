"""File-format speed: geomvision.io vs pycolmap (COLMAP models), Open3D (PLY) and GTSAM (g2o).

    .venv/bin/python benchmarks/io_formats.py [--quick]

COLMAP: a fountain-sized model (11 images, 15,000 points, track lengths 2-6, ~4 on average, plus
keypoints without a point). Every peer reads the files geomvision wrote and vice versa, so both
sides handle the same bytes. PLY: 1,000,000 coloured points. g2o: ../shared sphere.g2o.
Times are the median of several runs (wall clock); ratio = geomvision / peer (< 1: we are faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from geomvision.io import read_g2o, read_model, read_ply, write_g2o, write_model, write_ply
from geomvision.io.datasets import data_root
from geomvision.scene import Reconstruction
from geomvision.synthetic import orbit_scene


def fountain_like_model(seed: int = 0, n_points: int = 15000) -> Reconstruction:
    gen = np.random.default_rng(seed)
    scene = orbit_scene(11, n_points, radius=4.0, noise_px=0.5, rng=gen)
    rec = Reconstruction()
    cid = rec.add_camera(scene.camera, camera_id=1)
    kp_idx = np.empty(len(scene.obs_uv), dtype=np.int64)
    for i, T in enumerate(scene.cams_from_world):
        m = np.flatnonzero(scene.obs_image_idx == i)
        kp_idx[m] = np.arange(len(m))
        rec.add_image(f"{i:04d}.jpg", cid, scene.obs_uv[m], T, image_id=i + 1)
    order = np.argsort(scene.obs_point_idx, kind="stable")
    pts, start = np.unique(scene.obs_point_idx[order], return_index=True)
    for p, obs in zip(pts, np.split(order, start[1:])):
        keep = gen.permutation(obs)[: gen.integers(2, 7)]
        if len(keep) < 2:
            continue
        track = np.stack([scene.obs_image_idx[keep] + 1, kp_idx[keep]], axis=1)
        rec.add_point3D(scene.X_world[p], track, color=gen.integers(0, 256, 3), error=float(gen.uniform(0, 1)))
    return rec


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 200k PLY points")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    rows: list[tuple[str, float, str, float | None]] = []

    rec = fountain_like_model()
    summary = rec.summary()
    print(
        f"model: {summary['num_registered_images']} images, {summary['num_points3D']} points, "
        f"{summary['num_observations']} observations (mean track {summary['mean_track_length']:.2f}), "
        f"{sum(len(im.keypoints) for im in rec.images.values())} keypoints"
    )
    try:
        import pycolmap
    except ImportError:
        pycolmap = None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for binary, ext in ((True, "bin"), (False, "txt")):
            ours = tmp / f"ours_{ext}"
            t_w = timed(lambda: write_model(rec, ours, binary=binary), repeat)
            t_r = timed(lambda: read_model(ours, check=False), repeat)
            t_rc = timed(lambda: read_model(ours), max(1, repeat // 3))
            p_w = p_r = None
            if pycolmap is not None:
                prec = pycolmap.Reconstruction(str(ours))
                peer = tmp / f"peer_{ext}"
                peer.mkdir()
                p_w = timed(lambda: (prec.write_binary if binary else prec.write_text)(str(peer)), repeat)
                p_r = timed(lambda: pycolmap.Reconstruction(str(ours)), repeat)
            rows.append((f"COLMAP {ext} write", t_w, "pycolmap write", p_w))
            rows.append((f"COLMAP {ext} read (check=False)", t_r, "pycolmap read", p_r))
            rows.append((f"COLMAP {ext} read (+ rec.check())", t_rc, "pycolmap read", p_r))

        n_ply = 200_000 if args.quick else 1_000_000
        gen = np.random.default_rng(1)
        xyz = gen.normal(size=(n_ply, 3))
        colors = gen.integers(0, 256, size=(n_ply, 3)).astype(np.uint8)
        ply = tmp / "cloud.ply"
        t_w = timed(lambda: write_ply(xyz, ply, colors), repeat)
        t_r = timed(lambda: read_ply(ply), repeat)
        o_w = o_r = None
        try:
            import open3d as o3d

            pc = o3d.geometry.PointCloud()
            pc.points = o3d.utility.Vector3dVector(xyz)
            pc.colors = o3d.utility.Vector3dVector(colors / 255.0)
            o_w = timed(lambda: o3d.io.write_point_cloud(str(tmp / "o3d.ply"), pc), repeat)
            o_r = timed(lambda: o3d.io.read_point_cloud(str(ply)), repeat)
        except ImportError:
            pass
        rows.append((f"PLY write {n_ply // 1000}k pts", t_w, "open3d write", o_w))
        rows.append((f"PLY read {n_ply // 1000}k pts", t_r, "open3d read", o_r))

        root = data_root()
        sphere = None if root is None else root / "posegraph" / "sphere.g2o"
        if sphere is not None and sphere.is_file():
            graph = read_g2o(sphere)
            t_r = timed(lambda: read_g2o(sphere), repeat)
            t_w = timed(lambda: write_g2o(graph, tmp / "s.g2o"), repeat)
            g_r = g_w = None
            try:
                import gtsam

                g_r = timed(lambda: gtsam.readG2o(str(sphere), True), repeat)
                g_graph, g_values = gtsam.readG2o(str(sphere), True)
                g_w = timed(lambda: gtsam.writeG2o(g_graph, g_values, str(tmp / "g.g2o")), repeat)
            except ImportError:
                pass
            rows.append(("g2o read sphere", t_r, "gtsam.readG2o", g_r))
            rows.append(("g2o write sphere", t_w, "gtsam.writeG2o", g_w))
        else:
            print("sphere.g2o not found: g2o rows skipped (set GEOMVISION_DATA)")

    print(f"\n{'task':38s} {'geomvision':>11s}   {'peer':18s} {'peer time':>10s} {'ratio':>7s}")
    for task, ours_t, peer_name, peer_t in rows:
        peer_s = f"{peer_t * 1e3:8.1f} ms" if peer_t is not None else "       n/a"
        ratio = f"{ours_t / peer_t:7.2f}" if peer_t else "    n/a"
        print(f"{task:38s} {ours_t * 1e3:8.1f} ms   {peer_name:18s} {peer_s} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
