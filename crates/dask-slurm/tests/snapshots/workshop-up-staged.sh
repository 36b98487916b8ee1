#!/bin/bash
#SBATCH --job-name=demo
#SBATCH --partition=multiple
#SBATCH --nodes=2
#SBATCH --ntasks=4
#SBATCH --cpus-per-task=20
#SBATCH --time=30:00
#SBATCH --account=hk-project
#SBATCH --qos=normal
#SBATCH --constraint=ib&[skylake|icelake]
#SBATCH --reservation=workshop-2026
#SBATCH --gres=gpu:a100:2
#SBATCH --mem-per-cpu=2000
#SBATCH --exclusive
#SBATCH --output="/home/alice/notebooks/slurm-%j.out"
#SBATCH --comment=rust-cluster-kernel:user=alice:cluster=demo:role=scheduler
#
# rust-cluster-kernel: Dask cluster demo (profile workshop): rank 0 is the scheduler,
# ranks 1-3 are workers.
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

# The site's set-up (the profile's prologue), as written.
module purge
module load devel/python/3.12 mpi/openmpi/4.1

# Unpack the packed environment to node-local $TMP, one task per node (after the prologue),
# then activate it.
export RCK_ENV_ARCHIVE="${HOME}"'/envs/dask env.tar.gz'
RCK_PROLOGUE=$(cat <<'RCK_PROLOGUE_END'
module purge
module load devel/python/3.12 mpi/openmpi/4.1
RCK_PROLOGUE_END
)
export RCK_PROLOGUE
srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 bash -c '
  set -eo pipefail
  eval "$RCK_PROLOGUE"
  d="${TMP:-/tmp}/rck-env-$SLURM_JOB_ID"
  mkdir -p "$d"
  tar -xf "$RCK_ENV_ARCHIVE" -C "$d"
  if [ -x "$d/bin/conda-unpack" ]; then source "$d/bin/activate" && conda-unpack; fi
  echo "rust-cluster-kernel: environment unpacked to $d on ${SLURMD_NODENAME:-$(hostname)}" >&2
'
rck_activate() {  # a venv or conda environment directory
  if [ -f "$1/bin/activate" ]; then
    source "$1/bin/activate"
  else
    export PATH="$1/bin:$PATH"
  fi
}
rck_activate "$TMP/rck-env-$SLURM_JOB_ID"

# Environment from the profile.
export DASK_DISTRIBUTED__WORKER__DAEMON='False'
export MY_PATH="${HOME}"'/bin:'"${PATH}"

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

# The dashboard is plain HTTP without a login: it listens on this interface's address only,
# not on every interface (the scheduler, rank 0, runs on this node), and serves Dask's pages
# but neither its HTTP API nor its proxy (which would relay anyone to any host and port).
rck_ip=$(python3 -c 'import socket, sys, psutil
ips = [a.address for a in psutil.net_if_addrs().get(sys.argv[1], []) if a.family == socket.AF_INET]
if not ips:
    sys.exit("rust-cluster-kernel: interface %s has no IPv4 address on this node" % sys.argv[1])
print(ips[0])' ib0)
export DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES="['distributed.http.scheduler.prometheus', 'distributed.http.scheduler.info', 'distributed.http.scheduler.json', 'distributed.http.health', 'distributed.http.statics']"

# --scheduler-port 0: a free port (a fixed 8786 collides when clusters share a node).
# --worker-class (distributed.Worker unless the profile says): dask-mpi's --no-nanny is broken (2026.3).
# $SLURM_JOB_ID in --name keeps worker names unique across jobs.
mpirun --map-by core:PE=20 -np 4 --mca btl '^openib' dask-mpi \
  --scheduler-file /home/alice/.local/state/rust-cluster-kernel/demo/scheduler.json \
  --scheduler-port 0 \
  --dashboard-address "$rck_ip":8787 \
  --protocol tls \
  --interface ib0 \
  --local-directory "${TMP}"'/dask' \
  --worker-class distributed.Worker \
  --worker-options '{"death_timeout":300}' \
  --nthreads 20 \
  --memory-limit 40GiB \
  --name demo-"$SLURM_JOB_ID"
