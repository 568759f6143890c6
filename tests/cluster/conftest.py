"""One real Ray cluster on loopback for the whole test session, with real workers: one
process with a preview worker, one with two workers on the tiny golden JASCO checkpoint."""

from __future__ import annotations

import importlib.util

import pytest

from tests.cluster.support import LocalCluster, local_cluster
from tests.conftest import GOLDEN

if importlib.util.find_spec("ray") is None:
    pytest.skip(
        "ray is not installed: the cluster tier needs `pip install 'jasco-bridge[cluster]'` "
        "(the README's test command installs it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def ray_cluster() -> LocalCluster:
    if not GOLDEN.is_dir():
        pytest.skip(f"golden fixtures not found at {GOLDEN} (set JASCO_SHARED)")
    import ray

    with local_cluster(num_cpus=3) as cluster:
        cluster.start_workers(
            ("--engine", "preview", "--cpu-actors", "1"),
            ("--engine", "jasco", "--model", str(GOLDEN), "--cpu-actors", "2"),
        )
        try:
            yield cluster
        finally:
            ray.shutdown()  # before the head goes, so the client does not try to reconnect
