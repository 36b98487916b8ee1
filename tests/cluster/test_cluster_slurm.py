"""%cluster end to end on the real lab SLURM, through the kernel over real sockets:
up → the card reaches running with all workers (updated in place) → grow → shrink → logs →
restart (re-attached) → cancel → nothing left; shutdown cancels; SIGKILL leaves it to the
watchdog; bad input submits nothing; a dead controller is reported, not waited for."""
import contextlib
import queue
import signal
import subprocess
import time

import pytest

from slurm_lab import Kernel, dask_processes, squeue_ids, wait_until

pytestmark = pytest.mark.slurm


def card_text(msg):
    return msg["content"]["data"]["text/plain"]


def updates_until(kc, display_id, predicate, timeout):
    """update_display_data messages for display_id (sent after the cell ended) until one matches."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["msg_type"] == "update_display_data" and msg["content"]["transient"].get("display_id") == display_id:
            seen.append(card_text(msg))
            if predicate(seen[-1]):
                return seen
    raise AssertionError(f"no card update matched; last seen: {seen[-1:] or 'none'}")


def workers_line(text):
    return next(line for line in text.splitlines() if line.startswith("workers"))


def test_lifecycle_up_grow_shrink_logs_restart_cancel(kernel):
    run = kernel.run("%sinfo")
    assert "multiple" in run.result["text/plain"] and "single" in run.result["text/plain"]

    script = kernel.run("%cluster script lifecycle").result["text/plain"]
    assert "dask-mpi" in script and "--scheduler-file" in script and "#SBATCH --partition=multiple" in script

    up = kernel.run("%cluster up lifecycle")
    assert up.status == "ok", up.reply["content"]
    card = up.of("display_data")[0]
    display_id = card["content"]["transient"]["display_id"]
    assert "lifecycle" in card_text(card) and "text/html" in card["content"]["data"]
    # The card goes to running with all 3 workers by itself, after the cell has finished.
    updates_until(kernel.kc, display_id, lambda t: "[running]" in t and "3/3" in workers_line(t), 90)

    grow = kernel.run("%cluster grow lifecycle --wait --timeout 90")
    assert grow.status == "ok", grow.reply["content"]
    status = kernel.run("%cluster status lifecycle").of("display_data")[0]
    assert "7/7" in workers_line(card_text(status))
    grow_job = [line.split()[0] for line in card_text(status).splitlines() if " grow " in f" {line} "][0]

    shrink = kernel.run(f"%cluster shrink lifecycle --job {grow_job}")
    assert shrink.status == "ok", shrink.reply["content"]
    wait_until(lambda: "3/3" in workers_line(card_text(kernel.run("%cluster status lifecycle").of("display_data")[0])), 60, "back to 3 workers")

    logs = kernel.run("%cluster logs lifecycle --tail 200").result["text/plain"]
    assert "distributed.scheduler" in logs and "Scheduler at" in logs

    dashboard = kernel.run("%cluster dashboard lifecycle").result["text/plain"]
    assert "ssh -N -L" in dashboard

    # A restart keeps the cluster and re-attaches it.
    kernel.restart()
    listed = wait_until(lambda: (t := kernel.run("%cluster list").result["text/plain"]) and "running" in t and t, 60, "the re-attached cluster")
    assert "lifecycle" in listed

    jobs_before = squeue_ids("lifecycle")
    assert jobs_before
    cancel = kernel.run("%cluster cancel lifecycle")
    assert cancel.status == "ok", cancel.reply["content"]
    assert "[finished]" in card_text(cancel.of("display_data")[-1])
    assert not squeue_ids("lifecycle")
    wait_until(lambda: not dask_processes("lifecycle"), 30, "no dask-mpi process left")


def test_shutdown_cancels_what_the_kernel_started(lab_env):
    k = Kernel(lab_env)
    try:
        up = k.run("%cluster up closing --wait --timeout 90")
        assert up.status == "ok", up.reply["content"]
        assert squeue_ids("closing")
    finally:
        k.stop()
    wait_until(lambda: not squeue_ids("closing"), 30, "the cluster cancelled at shutdown")


def test_sigkill_leaves_it_to_the_watchdog(lab_env):
    k = Kernel(lab_env)
    up = k.run("%cluster up orphan --profile quickdog --wait --timeout 90")
    assert up.status == "ok", up.reply["content"]
    assert squeue_ids("orphan")
    k.km.signal_kernel(signal.SIGKILL)
    k.kc.stop_channels()
    # Nobody touches the heartbeat any more: the job ends itself (12 s timeout, checked every 3 s).
    wait_until(lambda: not squeue_ids("orphan"), 120, "the watchdog to end the orphaned job")


def test_bad_input_is_a_clear_error_and_submits_nothing(kernel):
    before = squeue_ids()
    for code, words in [
        ("%cluster up 'x; rm -rf ~'", "name"),
        ("%cluster up --partition 'multiple$(id)'", "partition"),
        ("%cluster up --time 99:99:99:99", "time"),
        ("%cluster up --nodes 0", "nodes"),
        ("%cluster up --nodse 2", "--nodse"),
        ("%cluster up --partition nosuch", "nosuch"),
    ]:
        run = kernel.run(code)
        assert run.status == "error", code
        assert words in run.reply["content"]["evalue"], (code, run.reply["content"]["evalue"])
    assert squeue_ids() == before
    assert kernel.run("%cluster nonsense").reply["content"]["ename"] == "UsageError"
    assert kernel.run("40 + 2").result["text/plain"] == "42"


def test_dead_controller_is_reported_quickly(lab_env, tmp_path):
    conf = tmp_path / "slurm.conf"
    text = open("/tmp/slurm-lab/etc/slurm.conf").read()
    conf.write_text(text.replace("SlurmctldPort=6817", "SlurmctldPort=6899"))
    env = dict(lab_env, SLURM_CONF=str(conf))
    k = Kernel(env)
    try:
        start = time.monotonic()
        run = k.run("%sinfo", timeout=60)
        assert run.status == "error"
        assert "controller" in run.reply["content"]["evalue"].lower()
        assert time.monotonic() - start < 30  # reported, not hung (SLURM itself gives up in ~9 s)
        assert k.run("1 + 1").result["text/plain"] == "2"
    finally:
        k.stop()


def test_a_reservation_reaches_the_job_and_an_unknown_one_is_slurms_refusal(kernel):
    """A workshop's reservation (made here with scontrol for the length of the test): the
    cluster's job runs in it; a reservation SLURM does not know is SLURM's own error."""
    name = "rck-workshop"
    made = subprocess.run(["scontrol", "create", "reservation", f"ReservationName={name}", "Users=root",
                           "StartTime=now", "Duration=10", "Nodes=ALL", "Flags=IGNORE_JOBS"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    try:
        with cluster_job(kernel, "reserved", f"--reservation {name}") as shown:
            assert f"Reservation={name}" in shown, shown
        bad = kernel.run("%cluster up unreserved --reservation no-such-reservation")
        assert bad.status == "error"
        assert "reservation" in bad.reply["content"]["evalue"].lower(), bad.reply["content"]
        assert not squeue_ids("unreserved")
    finally:
        subprocess.run(["scontrol", "delete", f"ReservationName={name}"], capture_output=True)


def test_the_card_shows_a_controller_outage_and_clears_it_by_itself(lab_env, tmp_path):
    """The live card says when the controller cannot be reached and, once it can again, clears
    the error by itself within 45 s (steady polling is every 30 s). The outage: the kernel's
    SLURM_CONF is pointed at a port where no controller listens, then back."""
    good = open("/tmp/slurm-lab/etc/slurm.conf").read()
    conf = tmp_path / "slurm.conf"
    conf.write_text(good)
    k = Kernel(dict(lab_env, SLURM_CONF=str(conf)))
    try:
        up = k.run("%cluster up outage --wait --timeout 90")
        assert up.status == "ok", up.reply["content"]
        display_id = up.of("display_data")[0]["content"]["transient"]["display_id"]
        conf.write_text(good.replace("SlurmctldPort=6817", "SlurmctldPort=6899"))
        down = updates_until(k.kc, display_id, lambda t: "controller" in t.lower(), 90)
        assert "running" in down[-1], down[-1]  # the cluster itself goes on
        conf.write_text(good)
        back = updates_until(k.kc, display_id, lambda t: "controller" not in t.lower(), 45)
        assert "3/3" in workers_line(back[-1]), back[-1]
    finally:
        conf.write_text(good)
        k.run("%cluster cancel outage", timeout=120)
        k.stop()


def test_scancel_takes_the_job_ids_slurm_takes(kernel, lab_env):
    """One job-id rule for the magic and the SLURM client: array tasks and task sets pass."""
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--job-name=rck-array", "--partition=single", "--array=1-3", "--time=2:00",
         "--output=/dev/null", "--wrap", "sleep 120"],
        env=lab_env, capture_output=True, text=True,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    try:
        tasks = lambda: sorted(subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%i"], capture_output=True,
                                              text=True).stdout.split())
        wait_until(lambda: len(tasks()) == 3, 30, "three array tasks")
        run = kernel.run(f"%scancel {job}_2")
        assert run.status == "ok", run.reply["content"]
        wait_until(lambda: tasks() == [f"{job}_1", f"{job}_3"], 30, "task 2 to leave the queue")
        assert kernel.run(f"%scancel {job}_[1,3]").status == "ok"
        wait_until(lambda: tasks() == [], 30, "the other tasks to leave the queue")
        bad = kernel.run(f"%scancel {job};id")
        assert bad.status == "error" and "invalid job id" in bad.reply["content"]["evalue"]
    finally:
        subprocess.run(["scancel", job])


@contextlib.contextmanager
def cluster_job(kernel, name, options):
    """`%cluster up NAME OPTIONS --wait`: yields its job's `scontrol show job` text, and cancels
    the cluster after."""
    up = kernel.run(f"%cluster up {name} {options} --wait --timeout 90")
    assert up.status == "ok", up.reply["content"]
    try:
        [job] = squeue_ids(name)
        yield subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    finally:
        kernel.run(f"%cluster cancel {name}", timeout=120)


def test_site_directives_reach_the_job_and_slurms_refusal_reaches_the_user(kernel):
    with cluster_job(kernel, "sited", "--constraint lab --exclusive --gres lab:1") as shown:
        assert "Features=lab" in shown, shown
        assert "OverSubscribe=NO" in shown, shown  # whole nodes
        assert "gres:lab:1" in shown, shown  # the lab's generic resource
    bad = kernel.run("%cluster up unsited --constraint no-such-feature")
    assert bad.status == "error"
    assert "Invalid feature specification" in bad.reply["content"]["evalue"], bad.reply["content"]
    assert not squeue_ids("unsited")
    # A site that wants memory per CPU: its profile skips the generated --mem and adds its own.
    with cluster_job(kernel, "persite", "--profile site") as shown:
        assert "MinMemoryCPU=300M" in shown and "MinMemoryNode" not in shown, shown
    # The typed way: --mem-per-cpu replaces the profile's mem, and each worker's memory limit is
    # derived from it (0.9 x 300 MiB x 1 thread = 270 MiB).
    with cluster_job(kernel, "percpu", "--mem-per-cpu 300M") as shown:
        assert "MinMemoryCPU=300M" in shown and "MinMemoryNode" not in shown, shown
        card = card_text(kernel.run("%cluster status percpu").of("display_data")[0])
        assert "270.0 MiB" in card, card
    # Not even that far: a value that would be a second option never reaches sbatch.
    sneaky = kernel.run("%cluster up sneaky --constraint 'lab --wrap=id'")
    assert sneaky.status == "error" and "constraint" in sneaky.reply["content"]["evalue"]


def test_a_grow_job_that_slurm_fails_stays_on_the_card_and_ends_the_wait(kernel):
    """A grow job that fails at once (here: its Python environment does not exist) stays on the
    card with SLURM's reason, and a wait for its workers fails at once with that reason instead
    of waiting out its timeout."""
    up = kernel.run("%cluster up growfail --wait --timeout 90")
    assert up.status == "ok", up.reply["content"]
    try:
        grow = kernel.run("%cluster grow growfail --nodes 2 --workers-per-node 1 --python-env /nonexistent/env")
        assert grow.status == "ok", grow.reply["content"]
        [grow_job] = squeue_ids("growfail-grow")
        wait = kernel.run("%cluster wait growfail --workers 5 --timeout 300", timeout=400)
        assert wait.status == "error"
        assert f"job {grow_job} ended FAILED (NonZeroExitCode)" in wait.reply["content"]["evalue"], wait.reply["content"]
        card = card_text(kernel.run("%cluster status growfail").of("display_data")[0])
        row = next(line for line in card.splitlines() if line.strip().startswith(grow_job))
        assert "FAILED" in row and "NonZeroExitCode" in row, card
        assert "3/3" in workers_line(card), card
    finally:
        kernel.run("%cluster cancel growfail", timeout=120)
