#!/bin/bash
#SBATCH --job-name=demo-grow
#SBATCH --partition=multiple
#SBATCH --nodes=3
#SBATCH --ntasks=6
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=20
#SBATCH --time=30:00
#SBATCH --mem=90000mb
#SBATCH --output="/home/alice/notebooks/slurm-%j.out"
#SBATCH --comment=rust-cluster-kernel:user=alice:cluster=demo:role=grow
#
# rust-cluster-kernel: 6 more Dask worker(s) for cluster demo (profile workshop).
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
