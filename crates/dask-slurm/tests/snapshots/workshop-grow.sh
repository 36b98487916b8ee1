#!/bin/bash
#SBATCH --job-name=demo-grow
#SBATCH --partition=multiple
#SBATCH --nodes=3
#SBATCH --ntasks=6
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=20
#SBATCH --time=30:00
#SBATCH --mem=90000mb
#SBATCH --signal=B:USR1@300
#SBATCH --output="/home/alice/notebooks/slurm-%j.out"
#SBATCH --comment=rust-cluster-kernel:user=alice:cluster=demo:role=grow
#
# rust-cluster-kernel: 6 more Dask worker(s) for cluster demo (profile workshop).
trap 'rck_drain_early=1' USR1  # the drain, before the workers start
set -eo pipefail
umask 077  # what the job writes (scheduler file, spill files) is yours alone
: "${TMP:=/tmp}"  # node-local scratch (set per job on the workshop's cluster)

# Watchdog: end this job if the kernel's heartbeat file has not been touched for 600 s
# (the kernel died without cancelling it). Checked every 30 s.
rck_heartbeat=/home/alice/.local/state/rust-cluster-kernel/heartbeat-4242
rck_watchdog() {
  local now mtime
  while sleep 30; do
    now=$(date +%s)
    mtime=$(stat -c %Y "$rck_heartbeat" 2>/dev/null) || mtime=0
    if [ $((now - mtime)) -ge 600 ]; then
      echo "rust-cluster-kernel watchdog: $rck_heartbeat not touched for 600 s; ending job $SLURM_JOB_ID" >&2
      if [ -n "${RCK_PROCESS_GROUP_JOB:-}" ]; then kill -INT 0; sleep 2; kill -INT 0; else scancel "$SLURM_JOB_ID"; fi
      return 0
    fi
  done
}
rck_watchdog &
rck_watchdog_pid=$!
trap 'kill "$rck_watchdog_pid" 2>/dev/null || true' EXIT

# The Python environment with dask-mpi.
rck_activate() {  # a venv or conda environment directory
  if [ -f "$1/bin/activate" ]; then
    source "$1/bin/activate"
  else
    export PATH="$1/bin:$PATH"
  fi
}
rck_activate '/home/alice/venvs/dask'

# Mutual TLS: every Dask connection is encrypted, and both ends must show a certificate
# of this cluster's own CA (made by the kernel; the keys are 0600 files only you can read).
# Scheduler, workers and tasks that open a Client use the node certificate.
rck_tls=/home/alice/.local/state/rust-cluster-kernel/demo/tls
export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True
export DASK_DISTRIBUTED__COMM__TLS__CA_FILE="$rck_tls"/ca.pem
export DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__CERT="$rck_tls"/node.pem
export DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__KEY="$rck_tls"/node-key.pem
export DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT="$rck_tls"/node.pem
export DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY="$rck_tls"/node-key.pem
export DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT="$rck_tls"/node.pem
export DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY="$rck_tls"/node-key.pem

# Every rank is a worker that joins the scheduler named in the scheduler file.
# --worker-class (distributed.Worker unless the profile says): dask-mpi's --no-nanny is broken (2026.3).
# $SLURM_JOB_ID in --name keeps worker names unique across jobs.

# Drain before the time limit (drain_margin = 300): SLURM sends USR1 to this shell 300 s
# before it (up to 60 s earlier: SLURM looks about once a minute), as `scancel --signal=USR1
# --batch JOBID` does at once. rck_drain then retires this job's workers through the scheduler
# (for at most 270 s): their results move to the cluster's other workers, the workers close,
# and mpirun ends with them.
rck_launch() {
  mpirun --map-by core:PE=20 -np 6 dask-mpi \
    --no-scheduler \
    --scheduler-file /home/alice/.local/state/rust-cluster-kernel/demo/scheduler.json \
    --protocol tls \
    --interface ib0 \
    --local-directory "${TMP}"'/dask' \
    --worker-class distributed.Worker \
    --worker-options '{"death_timeout":300}' \
    --nthreads 20 \
    --memory-limit 40500MiB \
    --name demo-grow-"$SLURM_JOB_ID"
}
rck_drain_py='import sys
from distributed import Client
scheduler_file, prefix = sys.argv[1], sys.argv[2]
def log(*words):
    print("rust-cluster-kernel drain:", *words, flush=True)
with Client(scheduler_file=scheduler_file, timeout=30) as client:
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except Exception:
        workers = client.scheduler_info()["workers"]
    ours = {address: str(w["name"]) for address, w in workers.items()
            if str(w["name"]).startswith(prefix)
            and str(w["name"])[len(prefix):].replace("-", "").isdigit()}
    if not ours:
        log("no worker of this job is left")
        sys.exit(0)
    names = sorted(ours.values())
    held = sum(len(keys) for address, keys in client.has_what().items() if address in ours)
    log("retiring", len(names), "worker(s) that hold", held, "result(s):", *names)
    retired = client.retire_workers(names=names, close_workers=True)
    log("retired", len(retired), "of", len(names), "worker(s); their results moved to the others")
    sys.exit(0 if len(retired) == len(names) else 1)
'
rck_drain() {
  if [ -n "${rck_draining:-}" ]; then return 0; fi
  rck_draining=1
  echo "rust-cluster-kernel drain: USR1 at $(date +%T); retiring workers demo-grow-$SLURM_JOB_ID-* (at most 270 s)"
  timeout -k 10 270 python3 -c "$rck_drain_py" /home/alice/.local/state/rust-cluster-kernel/demo/scheduler.json "demo-grow-$SLURM_JOB_ID-" \
    || echo "rust-cluster-kernel drain: not finished (status $?); workers that are left stay until the time limit"
}
if [ -n "${rck_drain_early:-}" ]; then
  echo "rust-cluster-kernel drain: USR1 came before the workers started; starting none"
  exit 0
fi
if [ -n "${RCK_PROCESS_GROUP_JOB:-}" ]; then
  # A local process group: no time limit, and SIGINT, which ends the group, must reach mpirun.
  rck_launch
  exit
fi
trap 'rck_signalled=1; rck_drain' USR1
rck_launch &
rck_launch_pid=$!
while :; do
  rck_signalled=
  rck_status=0
  wait "$rck_launch_pid" || rck_status=$?
  if [ -z "$rck_signalled" ]; then break; fi
done
exit "$rck_status"
