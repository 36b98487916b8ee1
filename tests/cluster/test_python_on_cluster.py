"""%%python bound to a cluster on the real lab SLURM: Client() with no arguments reaches the
cluster's scheduler, a dask.array computation runs on its dask-mpi workers, %%python runs on the
cluster's own Python (its python_env), and %cluster use switches the binding."""
import json

import pytest

from slurm_lab import squeue_ids

pytestmark = pytest.mark.slurm


def python_env_of_its_own(base, venv):
    """A Python environment directory that is the lab venv under another name: its bin/python
    and bin/activate lead to the venv and mark the processes as run from here."""
    bin_dir = base / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nRCK_WRAPPED_ENV=1 exec "{venv}/bin/python" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    (bin_dir / "activate").write_text(f'. "{venv}/bin/activate"\nexport RCK_WRAPPED_ENV=1\n')
    return base


def test_dask_array_runs_on_the_clusters_workers(kernel, lab_env, tmp_path):
    # Before any cluster: the interpreter is the default profile's python_env (the lab venv).
    before = kernel.run("%%python\nimport os\nprint(os.environ.get('RCK_WRAPPED_ENV'))")
    assert before.status == "ok" and before.stdout == "None\n", before.reply["content"]
    assert "python_env of the default profile" in kernel.run("%python_env").result["text/plain"]
    env_dir = python_env_of_its_own(tmp_path / "cluster-env", lab_env["RCK_DASK_VENV"])
    up = kernel.run(f"%cluster up pyarray --python-env {env_dir} --wait --timeout 120")
    assert up.status == "ok", up.reply["content"]
    try:
        # The cluster's own Python now: %python_env says so, and the next cell moves there.
        env = kernel.run("%python_env").result["text/plain"]
        assert f"interpreter  {env_dir}/bin/python" in env
        assert f"python_env of cluster pyarray ({env_dir})" in env
        run = kernel.run(
            "%%python\n"
            "import json, os\n"
            "import dask.array as da\n"
            "from dask.distributed import Client, get_task_stream\n"
            "client = Client()\n"
            "x = da.random.random((2000, 2000), chunks=(500, 500))\n"
            "y = (x + x.T) - x.mean(axis=0)\n"
            "# A worker's own environment (os.environ.get itself would be pickled with the client's).\n"
            "def worker_env(name):\n"
            "    import os\n"
            "    return os.environ.get(name)\n"
            "with get_task_stream() as stream:\n"
            "    total = float(y.sum().compute())\n"
            "print(json.dumps({'address': client.scheduler.address, 'cluster': os.environ['RCK_CLUSTER_NAME'],\n"
            "                  'workers': sorted(client.run(os.getpid)), 'ran_on': sorted({t['worker'] for t in stream.data}),\n"
            "                  'here': os.environ.get('RCK_WRAPPED_ENV'), 'there': sorted(set(client.run(worker_env, 'RCK_WRAPPED_ENV').values())),\n"
            "                  'limits': sorted({w['memory_limit'] for w in client.scheduler_info()['workers'].values()}),\n"
            "                  'resources': sorted({json.dumps(w['resources']) for w in client.scheduler_info()['workers'].values()}),\n"
            "                  'death_timeouts': sorted(set(client.run(lambda dask_worker: dask_worker.death_timeout).values())),\n"
            "                  'prologue': sorted(set(client.run(worker_env, 'RCK_PROLOGUE_MARK').values()))}))\n"
            "client",
            timeout=300,
        )
        assert run.status == "ok", run.reply["content"]
        assert f"%%python now runs on {env_dir}/bin/python" in run.stderr
        seen = json.loads(run.stdout.strip().splitlines()[-1])
        # Each worker's memory limit is derived from the job's memory (lab: mem 2400M, 2 ranks
        # per node): 0.9 x 2400 MiB / 2, not the host's memory as Dask's `auto` would take.
        assert seen["limits"] == [1080 * 2**20]
        # A worker whose scheduler has gone closes after 300 s instead of waiting for walltime.
        assert seen["death_timeouts"] == [300]
        # The profile's worker resources reach every worker.
        assert seen["resources"] == ['{"slot": 1.0}']
        # The profile's prologue ran before the workers started, on every node.
        assert seen["prologue"] == ["lab-prologue"]
        # Client and workers both run from the cluster's environment.
        assert seen["here"] == "1" and seen["there"] == ["1"]
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
