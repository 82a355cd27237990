"""Feature extraction and matching as tasks on a Dask cluster (``dask.distributed``, optional).

:func:`dask_client` opens a client on a running scheduler (``tcp://HOST:8786``) or on a local
cluster of worker processes (on 127.0.0.1 only); :func:`extract_all` and :func:`match_all` in
:mod:`.batch` take it as ``client=`` and then send one task per image and one per chunk of
pairs. Workers read the images from their paths (a path every worker can read: a shared folder on
a real cluster) and return features and matches to the client, which fills its cache; results
are the same as a local run (each task is deterministic). A task whose worker dies is rerun on
another worker by the scheduler; one that raises is retried ``TASK_RETRIES`` times.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence

__all__ = ["cluster_client", "dask_client", "run_tasks"]

TASK_RETRIES = 2


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 0) -> Iterator:
    """A ``distributed.Client`` on ``scheduler`` (an address), or on a local cluster of
    ``workers`` single-threaded worker processes on 127.0.0.1; closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - depends on the install
        raise ValueError("running on a Dask cluster needs dask.distributed: pip install 'geomvision[dask]'") from None
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    if workers < 1:
        raise ValueError(f"workers must be >= 1 for a local cluster, got {workers}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield client


def cluster_client(scheduler: str | None, workers: int, client=None):
    """A context giving ``client`` when one is given (a run's stages share it), else
    :func:`dask_client` when a cluster is asked for (``scheduler`` or ``workers`` > 0), else None
    (run locally)."""
    if client is not None or not (scheduler or workers > 0):
        return contextlib.nullcontext(client)
    return dask_client(scheduler, workers)


def run_tasks(client, fn: Callable, args: Sequence, on_done: Callable[[int, object], None]) -> None:
    """Run ``fn(*a)`` for each ``a`` of ``args`` on the cluster; ``on_done(k, result)`` is
    called on the client as task k completes (any order). A task's exception is raised here
    after its retries."""
    from distributed import as_completed

    futures = [client.submit(fn, *a, pure=False, retries=TASK_RETRIES) for a in args]
    index = {f.key: k for k, f in enumerate(futures)}
    try:
        for fut in as_completed(futures):
            on_done(index[fut.key], fut.result())
    finally:
        client.cancel(futures)


def workers_see(client, path: str | os.PathLike) -> bool:
    """True when every worker of ``client`` can open the file ``path`` (a cache on a shared
    path, or workers on this machine): then tasks may read the cache instead of being sent data."""
    found = client.run(os.path.isfile, os.fspath(path))
    return bool(found) and all(found.values())
