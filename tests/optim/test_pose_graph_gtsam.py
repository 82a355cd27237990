"""The shared pose graphs (sphere, parking-garage: SE(3); intel: SE(2)) optimised with the default
options reach GTSAM's optimum: the best of GTSAM's LM from the file's vertices and from its chordal
start (InitializePose3), node positions compared within 1e-4 of the graph's extent."""

from __future__ import annotations

import os

import numpy as np
import pytest

from geomvision.io import read_g2o
from geomvision.optim.pose_graph import optimize_pose_graph


def require_module(name: str):
    """An optional peer: skipped locally when missing, a failure in CI (the 'bench' extra has it)."""
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (install the 'bench' extra)")
        pytest.skip(f"{name} not installed")

GRAPHS = {"sphere": True, "parking-garage": True, "intel": False}


def gtsam_optimum(path, is3d: bool) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], float]:
    """Node (R, t) and cost (GTSAM's 0.5 sum |e|^2) of the better of GTSAM's two starts."""
    gtsam = require_module("gtsam")
    best = None
    starts = ("file", "chordal") if is3d else ("file",)
    for start in starts:
        graph, initial = gtsam.readG2o(str(path), is3d)
        if is3d:
            prior = gtsam.PriorFactorPose3(0, initial.atPose3(0), gtsam.noiseModel.Diagonal.Variances([1e-8] * 6))
        else:
            prior = gtsam.PriorFactorPose2(0, initial.atPose2(0), gtsam.noiseModel.Diagonal.Variances([1e-8] * 3))
        graph.add(prior)
        if start == "chordal":
            initial = gtsam.InitializePose3.initialize(graph)
        params = gtsam.LevenbergMarquardtParams()
        params.setRelativeErrorTol(1e-10)
        params.setAbsoluteErrorTol(1e-12)
        params.setMaxIterations(200)
        result = gtsam.LevenbergMarquardtOptimizer(graph, initial, params).optimize()
        error = graph.error(result)
        if best is None or error < best[1]:
            if is3d:
                poses = {int(k): (result.atPose3(k).rotation().matrix(), np.asarray(result.atPose3(k).translation()))
                         for k in result.keys()}
            else:
                poses = {int(k): (result.atPose2(k).rotation().matrix(),
                                  np.array([result.atPose2(k).x(), result.atPose2(k).y()])) for k in result.keys()}
            best = (poses, error)
    return best


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_default_options_reach_gtsams_optimum(shared_data, name):
    path = shared_data / "posegraph" / f"{name}.g2o"
    ref, _ = gtsam_optimum(path, GRAPHS[name])
    graph = read_g2o(path)
    out, report = optimize_pose_graph(graph)
    assert report.converged
    ids = list(graph.nodes)
    P_ref = np.array([ref[k][1] for k in ids])
    P = np.array([out.nodes[k].t for k in ids])
    extent = np.ptp(P_ref, axis=0).max()
    deviation = np.abs(P - P_ref).max() / extent
    assert deviation < 1e-4, f"{name}: positions differ from GTSAM's by {deviation:.2e} of the extent"
    # geomvision minimises its own chi2: not above its value at GTSAM's solution
    at_gtsam = out.copy()
    at_gtsam.set_node_arrays(np.array(ids), np.array([ref[k][0] for k in ids]), P_ref)
    assert report.final_chi2 <= at_gtsam.chi2() * (1 + 1e-9)
