"""%%python bound to a cluster on the real lab SLURM: Client() with no arguments reaches the
cluster's scheduler, a dask.array computation runs on its dask-mpi workers, and %cluster use
switches the binding."""
import json

import pytest

from slurm_lab import squeue_ids

pytestmark = pytest.mark.slurm


def test_dask_array_runs_on_the_clusters_workers(kernel):
    up = kernel.run("%cluster up pyarray --wait --timeout 120")
    assert up.status == "ok", up.reply["content"]
    try:
        env = kernel.run("%python_env")
        # The interpreter comes from the profile's python_env (the venv that runs dask-mpi).
        assert "python_env of the default profile" in env.result["text/plain"]
        run = kernel.run(
            "%%python\n"
            "import json, os\n"
            "import dask.array as da\n"
            "from dask.distributed import Client, get_task_stream\n"
            "client = Client()\n"
            "x = da.random.random((2000, 2000), chunks=(500, 500))\n"
            "y = (x + x.T) - x.mean(axis=0)\n"
            "with get_task_stream() as stream:\n"
            "    total = float(y.sum().compute())\n"
            "print(json.dumps({'address': client.scheduler.address, 'cluster': os.environ['RCK_CLUSTER_NAME'],\n"
            "                  'workers': sorted(client.run(os.getpid)), 'ran_on': sorted({t['worker'] for t in stream.data})}))\n"
            "client",
            timeout=300,
        )
        assert run.status == "ok", run.reply["content"]
        seen = json.loads(run.stdout.strip().splitlines()[-1])
        status = kernel.run("%cluster status pyarray").of("display_data")[-1]["content"]["data"]["text/plain"]
        assert seen["address"] in status  # the scheduler of this cluster
        assert seen["cluster"] == "pyarray"
        assert len(seen["workers"]) == 3  # the three dask-mpi workers of the lab profile
        # The tasks ran on those workers.
        assert seen["ran_on"] and set(seen["ran_on"]) <= set(seen["workers"])
        # The Client's HTML repr renders as in a Python kernel.
        assert "text/html" in run.result and "Client" in run.result["text/plain"]
        use = kernel.run("%cluster use pyarray")
        assert seen["address"] in use.result["text/plain"]
        assert kernel.run("%cluster use nosuch").status == "error"
    finally:
        kernel.run("%cluster cancel pyarray", timeout=120)
    assert not squeue_ids("pyarray")
