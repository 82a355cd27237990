"""Feature extraction and matching on a local Dask cluster (2 worker processes on 127.0.0.1)
give what a local run gives, and ``run_sfm(workers=2)`` the same model."""

import os
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")

from geomvision.features import batch, exhaustive_pairs  # noqa: E402
from geomvision.features.batch import extract_all, match_all  # noqa: E402
from geomvision.features.distributed import dask_client, run_tasks, workers_see  # noqa: E402
from geomvision.sfm import CameraOptions, SfmOptions, run_sfm  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


def test_cluster_extraction_and_matching_equal_the_local_run(client, small_scene, tmp_path):
    paths = sorted((small_scene / "images").iterdir())
    ex = extract_all(paths, cache_dir=tmp_path, client=client, progress=False)
    local = extract_all(paths, progress=False)
    assert list(ex.features) == list(local.features) and ex.num_cached == 0
    for n, f in local.features.items():
        np.testing.assert_array_equal(ex.features[n].keypoints, f.keypoints)
        np.testing.assert_array_equal(ex.features[n].descriptors, f.descriptors)
    names = list(ex.features)
    pairs = [(names[i], names[j]) for i, j in exhaustive_pairs(len(names))]
    # the workers read the descriptors from the cache (on this machine): the client sends none
    assert batch._workers_read_cache(client, list(ex.features.values()))
    assert not batch._workers_read_cache(client, list(local.features.values()))  # in memory: scattered
    m = match_all(pairs, ex.features, cache_dir=tmp_path, client=client, progress=False)
    m_local = match_all(pairs, local.features, progress=False)
    assert sum(len(v) for v in m.values()) > 1000
    for p in pairs:
        np.testing.assert_array_equal(m[p], m_local[p])
    # verification tasks may read each pair's matches from the cache too: what they are sent
    assert workers_see(client, m.stored_path())
    on_worker = client.submit(lambda read: read(), m.reader(pairs[0]), pure=False).result()
    np.testing.assert_array_equal(on_worker, m_local[pairs[0]])
    # the client filled the cache: a rerun sends no task and reads everything back
    again = extract_all(paths, cache_dir=tmp_path, client=client, progress=False)
    assert again.num_cached == len(paths)
    assert match_all(pairs, ex.features, cache_dir=tmp_path, client=client, progress=False).num_cached == len(pairs)


def test_a_cache_the_workers_cannot_read_is_sent_to_them(client, small_scene, tmp_path, monkeypatch):
    """Streamed features whose cache is not on the workers' file system: the client reads the
    descriptors and scatters them, with the same matches."""
    paths = sorted((small_scene / "images").iterdir())[:3]
    ex = extract_all(paths, cache_dir=tmp_path / "a", progress=False)
    names = list(ex.features)
    pairs = [(names[i], names[j]) for i, j in exhaustive_pairs(len(names))]
    want = match_all(pairs, ex.features, progress=False)
    monkeypatch.setattr(batch, "stored_entry", lambda f: tmp_path / "elsewhere" / "entry.npz")
    assert not batch._workers_read_cache(client, list(ex.features.values()))
    got = match_all(pairs, ex.features, cache_dir=tmp_path / "b", client=client, progress=False)
    for p in pairs:
        np.testing.assert_array_equal(got[p], want[p])


def test_run_sfm_on_workers_gives_the_local_model(small_scene, tmp_path, monkeypatch):
    import geomvision.features.distributed as distributed

    opened = []
    real = distributed.dask_client

    def counting(*args, **kwargs):
        opened.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed, "dask_client", counting)
    opts = SfmOptions(camera=CameraOptions(K=str(small_scene / "K.txt")))
    local = run_sfm(small_scene / "images", opts, progress=False).reconstructions[0]
    assert opened == []
    on_cluster = run_sfm(small_scene / "images", SfmOptions(camera=opts.camera, workers=2), cache_dir=tmp_path,
                         progress=False).reconstructions[0]
    assert on_cluster.num_registered_images == local.num_registered_images == 6
    assert len(opened) == 1  # one cluster for extraction, matching and verification
    for iid in local.registered_image_ids:
        name = local.images[iid].name
        other = on_cluster.images[on_cluster.image_id_by_name(name)].cam_from_world
        np.testing.assert_allclose(other.matrix3x4, local.images[iid].cam_from_world.matrix3x4, atol=1e-9)


def test_bad_cluster_options_are_refused():
    with pytest.raises(ValueError, match="scheduler"):
        SfmOptions(scheduler="localhost")
    with pytest.raises(ValueError, match="workers"):
        SfmOptions(workers=-1)


def _die_once(marker: str, x: int) -> int:
    """Kill the worker process running it the first time (as a machine lost mid-run), then work."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return x * x


def test_tasks_of_a_lost_worker_are_rerun(client, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    got = {}
    run_tasks(client, _die_once, [(str(tmp_path / "died"), k) for k in range(8)], got.__setitem__)
    assert (tmp_path / "died").exists()
    assert got == {k: k * k for k in range(8)}
