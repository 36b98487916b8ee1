#!/usr/bin/env bash
# tests/slurm/up.sh - start a small, REAL Slurm cluster on this one machine (no
# systemd, no cgroups, no containers), for the project's tests and CI.
# Adapted from the team's proven lab recipe (its up.sh and NOTES.md, kept outside
# this repository). It writes the same slurm.conf as that recipe, so the two
# scripts can start and reuse the same LAB_DIR interchangeably.
#
#   sudo tests/slurm/up.sh [LAB_DIR]    # default LAB_DIR=/tmp/slurm-lab
#   sudo tests/slurm/down.sh [LAB_DIR]  # stops what up.sh started, nothing else
#
# What it does (idempotent; safe to run again while the cluster is up):
#   1. installs Debian's slurm-wlm (slurmctld, slurmd, client commands), munge
#      and Open MPI if any of them is missing (apt-get, Debian 12 "bookworm";
#      `apt-get update` runs only when the install fails without it);
#   2. writes LAB_DIR/etc/slurm.conf: one controller and N emulated nodes
#      n1..nN, all on 127.0.0.1 and each slurmd on its own port, with more
#      CPUs per node than the machine has (SlurmdParameters=config_overrides),
#      and two partitions like bwUniCluster's: "single" (1 node, default) and
#      "multiple" (>= 2 nodes);
#   3. starts a private munged (own key and socket under LAB_DIR/munge),
#      slurmctld and one slurmd per node, each as a normal daemon that writes
#      its pid file under LAB_DIR (down.sh stops exactly those pids);
#   4. waits until `sinfo` shows every node idle, then prints how to use it.
#
# Settings (environment variables):
#   SLURM_LAB_NODES=2        number of emulated nodes (n1..nN)
#   SLURM_LAB_CPUS=4         CPUs declared per node (may exceed the real count)
#   SLURM_LAB_MEM_MB=4096    RealMemory declared per node, in MB
#   SLURM_LAB_PORT=6817      slurmctld port; node i's slurmd listens on PORT+i
#   SLURM_LAB_LINK_ETC=1     symlink /etc/slurm/slurm.conf to our config when
#                            that file does not exist yet, so that sbatch/squeue
#                            work without SLURM_CONF (down.sh removes the link)
#   SLURM_LAB_TIMEOUT=60     seconds to wait for the nodes to become idle
#
# Must run as root (SlurmUser=root; jobs also run as the submitting user).
set -euo pipefail

LAB_DIR=${1:-${SLURM_LAB_DIR:-/tmp/slurm-lab}}
NODES=${SLURM_LAB_NODES:-2}
CPUS=${SLURM_LAB_CPUS:-4}
MEM_MB=${SLURM_LAB_MEM_MB:-4096}
PORT=${SLURM_LAB_PORT:-6817}
LINK_ETC=${SLURM_LAB_LINK_ETC:-1}
TIMEOUT=${SLURM_LAB_TIMEOUT:-60}

log() { printf '[up.sh] %s\n' "$*" >&2; }
die() { printf '[up.sh] ERROR: %s\n' "$*" >&2; exit 1; }
TMPDIR_LOG=$(mktemp)
trap 'rm -f "$TMPDIR_LOG"' EXIT

[ "$(id -u)" = 0 ] || die "run as root"
case "$LAB_DIR" in /*) ;; *) die "LAB_DIR must be an absolute path: $LAB_DIR" ;; esac
[ "$NODES" -ge 1 ] 2>/dev/null || die "SLURM_LAB_NODES must be >= 1"

# ---------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------
# slurm-wlm = slurmctld + slurmd + slurm-client (+ basic plugins).
# openmpi-bin/libopenmpi3 give mpirun and libmpi.so.40, which mpi4py's PyPI
# wheel loads at run time; nothing is compiled, so no -dev package is needed.
PKGS="slurm-wlm munge openmpi-bin"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "installing:$missing"
  # Debian's postinst scripts try to start munge/slurmctld/slurmd with the
  # packaged defaults. Block that with a temporary policy-rc.d (the standard
  # Debian mechanism) unless the image already has one.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d "$TMPDIR_LOG"' EXIT   # also on failure
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Try with the package lists the machine has; refresh them only if that
  # fails (a fresh image has none, or stale ones whose .debs are gone).
  # shellcheck disable=SC2086
  if ! apt-get install -y --no-install-recommends $missing >"$TMPDIR_LOG" 2>&1; then
    log "install failed with the current package lists; running apt-get update"
    apt-get update >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing >"$TMPDIR_LOG" 2>&1 \
      || { cat "$TMPDIR_LOG" >&2; die "apt-get install failed"; }
  fi
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap 'rm -f "$TMPDIR_LOG"' EXIT; fi
fi
for c in slurmctld slurmd sbatch sinfo scontrol munged munge mpirun runuser; do
  command -v "$c" >/dev/null || die "missing command after install: $c"
done

# ---------------------------------------------------------------------------
# 2. Configuration
# ---------------------------------------------------------------------------
CONF=$LAB_DIR/etc/slurm.conf
MUNGE_DIR=$LAB_DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2
HOST=$(hostname -s)   # slurmctld refuses to start unless SlurmctldHost names this host

mkdir -p "$LAB_DIR"/{etc,state,spool,log,run}
for i in $(seq 1 "$NODES"); do mkdir -p "$LAB_DIR/spool/n$i"; done

# Partition "multiple" requires >= 2 nodes, so it only exists with >= 2 nodes.
if [ "$NODES" -ge 2 ]; then
  MULTI="PartitionName=multiple Nodes=ALL MinNodes=2 DefaultTime=00:30:00 MaxTime=72:00:00 State=UP"
else
  MULTI="# (partition \"multiple\" needs SLURM_LAB_NODES >= 2)"
fi
NODE_LINES=""
for i in $(seq 1 "$NODES"); do
  # Features: a node feature for the tests of --constraint (sites select node types so); Gres:
  # two units of a generic resource "lab" (no device files) for the tests of --gres.
  NODE_LINES+="NodeName=n$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((PORT + i)) CPUs=$CPUS RealMemory=$MEM_MB Features=lab Gres=lab:2"$'\n'
done

NEW_CONF=$(cat <<EOF
# Generated by up.sh - a single-machine Slurm for tests. Do not edit; rerun up.sh.
ClusterName=lab
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
# Everything runs as root: no slurm user, no file ownership to manage.
SlurmUser=root
SlurmdUser=root

# Private munged (started by up.sh), not the system one.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET

# All state, spool, logs and pid files live under LAB_DIR.
# %n = node name, so each emulated node gets its own spool/pid/log.
StateSaveLocation=$LAB_DIR/state
SlurmdSpoolDir=$LAB_DIR/spool/%n
SlurmctldPidFile=$LAB_DIR/run/slurmctld.pid
SlurmdPidFile=$LAB_DIR/run/slurmd-%n.pid
SlurmctldLogFile=$LAB_DIR/log/slurmctld.log
SlurmdLogFile=$LAB_DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups, no systemd: track job processes by parent pid, no task binding,
# no accounting (so sacct does NOT work: "Slurm accounting storage is disabled").
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# A generic resource without devices (counted only), for the tests of --gres.
GresTypes=lab
MailProg=/bin/true

# Cores are the consumable resource; memory is not tracked, so jobs without
# --mem can share a node. (With CR_Core_Memory, slurm.conf(5) says a job
# without --mem gets DefMemPerNode, default 0 = the whole node; not tried here.)
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill

# Let a node claim the CPUs/memory written below even though the machine has
# fewer; without this the nodes register as "inval" (Low CPUs).
SlurmdParameters=config_overrides
# Nodes that were down come back by themselves when their slurmd registers.
ReturnToService=2
# Reject (instead of queueing forever) jobs that break partition limits,
# e.g. "sbatch -p multiple --nodes=1" -> "Node count specification invalid".
EnforcePartLimits=ALL
# Seconds between SIGTERM and SIGKILL on scancel/timeout.
KillWait=5
# Finished jobs stay visible in squeue (CANCELLED, COMPLETED, FAILED, TIMEOUT)
# for this many seconds (the Slurm default).
MinJobAge=300

${NODE_LINES}
PartitionName=single Nodes=ALL Default=YES MaxNodes=1 DefaultTime=00:30:00 MaxTime=72:00:00 State=UP
$MULTI
EOF
)

# pid_alive FILE NAME: true if the pid in FILE is running (not a zombie) and is NAME.
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

running_any=0
pid_alive "$LAB_DIR/run/slurmctld.pid" slurmctld && running_any=1
for i in $(seq 1 "$NODES"); do pid_alive "$LAB_DIR/run/slurmd-n$i.pid" slurmd && running_any=1; done

if [ -f "$CONF" ] && [ "$(cat "$CONF")" != "$NEW_CONF" ] && [ "$running_any" = 1 ]; then
  # An earlier lab of ours (its pid files say so) with an older configuration, e.g. from a
  # checkout before the lab's nodes got a feature: stop it, then start this one.
  log "the cluster in $LAB_DIR runs with a different configuration; stopping it with down.sh"
  "$(dirname "$0")/down.sh" "$LAB_DIR" || die "down.sh could not stop the cluster in $LAB_DIR"
fi
printf '%s\n' "$NEW_CONF" > "$CONF"
export SLURM_CONF=$CONF

# Optional: make the plain commands find the config without SLURM_CONF.
if [ "$LINK_ETC" = 1 ]; then
  mkdir -p /etc/slurm
  if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$CONF" ]; then
    :   # already ours (e.g. left by an earlier run that was not shut down)
  elif [ ! -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
    ln -s "$CONF" /etc/slurm/slurm.conf
    log "linked /etc/slurm/slurm.conf -> $CONF"
  else
    log "note: /etc/slurm/slurm.conf exists and is not ours; use SLURM_CONF=$CONF"
  fi
  # down.sh removes the link only if it still points to $CONF.
  if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$CONF" ]; then
    echo /etc/slurm/slurm.conf > "$LAB_DIR/run/etc-link"
  fi
fi

# ---------------------------------------------------------------------------
# 3. Daemons
# ---------------------------------------------------------------------------
# wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
wait_for() {
  local t=$1; shift
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }

# munged: runs as the "munge" user created by the Debian package. It insists
# that the socket directory be accessible (0755) and the key private (0600).
if pid_alive "$MUNGE_DIR/munged.pid" munged; then
  log "munged already running (pid $(cat "$MUNGE_DIR/munged.pid"))"
else
  mkdir -p "$MUNGE_DIR"
  chown munge:munge "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR"
  if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    runuser -u munge -- mungekey --create --keyfile="$MUNGE_DIR/munge.key"
  fi
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  runuser -u munge -- munged \
    --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
    --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
    --seed-file="$MUNGE_DIR/munged.seed" </dev/null >>"$LAB_DIR/log/start.log" 2>&1 \
    || die "munged failed to start; see $MUNGE_DIR/munged.log and $LAB_DIR/log/start.log"
  wait_for 10 munge_ok || die "munged does not answer on $MUNGE_SOCKET"
  log "munged started (pid $(cat "$MUNGE_DIR/munged.pid"))"
fi

# slurmctld: without -D it daemonizes (stdio to /dev/null) and writes its pid file.
if pid_alive "$LAB_DIR/run/slurmctld.pid" slurmctld; then
  log "slurmctld already running (pid $(cat "$LAB_DIR/run/slurmctld.pid"))"
else
  slurmctld -f "$CONF" </dev/null >>"$LAB_DIR/log/start.log" 2>&1 \
    || die "slurmctld failed to start; see $LAB_DIR/log/slurmctld.log"
  wait_for 30 sh -c 'scontrol ping | grep -q "is UP"' \
    || die "slurmctld does not answer; see $LAB_DIR/log/slurmctld.log"
  log "slurmctld started (pid $(cat "$LAB_DIR/run/slurmctld.pid"))"
fi

# One slurmd per emulated node; -N picks the NodeName (and so its port,
# spool dir, pid file and log file).
for i in $(seq 1 "$NODES"); do
  if pid_alive "$LAB_DIR/run/slurmd-n$i.pid" slurmd; then
    log "slurmd n$i already running (pid $(cat "$LAB_DIR/run/slurmd-n$i.pid"))"
  else
    slurmd -f "$CONF" -N "n$i" </dev/null >>"$LAB_DIR/log/start.log" 2>&1 \
      || die "slurmd n$i failed to start; see $LAB_DIR/log/slurmd-n$i.log"
    wait_for 10 test -s "$LAB_DIR/run/slurmd-n$i.pid" || die "slurmd n$i wrote no pid file"
    log "slurmd n$i started (pid $(cat "$LAB_DIR/run/slurmd-n$i.pid"), port $((PORT + i)))"
  fi
done

# ---------------------------------------------------------------------------
# 4. Wait until every node is idle
# ---------------------------------------------------------------------------
all_idle() {
  # sinfo -N prints one line per node and partition; every state must be idle
  # (or mix/alloc if jobs are already running from an earlier up.sh).
  local states
  states=$(sinfo -h -N -o '%t' | sort -u)
  [ -n "$states" ] && ! printf '%s\n' "$states" | grep -qvE '^(idle|mix|alloc)$'
}
if ! wait_for "$TIMEOUT" all_idle; then
  sinfo -N -o '%N %P %t %E' >&2 || true
  die "nodes not idle after ${TIMEOUT}s; see $LAB_DIR/log/"
fi

sinfo >&2
cat >&2 <<EOF

[up.sh] Slurm is up: $NODES node(s) x $CPUS CPUs, partitions single (default) and multiple.
  export SLURM_CONF=$CONF     # not needed if /etc/slurm/slurm.conf links to it
  sbatch -p single   --ntasks=2 job.sh
  sbatch -p multiple --nodes=2 --ntasks=4 job.sh
  squeue; scancel JOBID
  Inside a job, as root, mpirun needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
  Logs: $LAB_DIR/log/   Stop: $(dirname "$0")/down.sh $LAB_DIR
EOF
