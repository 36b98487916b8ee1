"""A bad day at the controller, with a fake SLURM command that hangs (a fault the real one
cannot be made to show on demand): interrupt ends the command at once and returns the cell,
instead of waiting out the command's 20 s timeout, and the kernel goes on."""
import os
import pathlib
import stat
import tempfile
import time

from kernelclient import collect, execute, shell_reply

FAKE_BIN = pathlib.Path(tempfile.mkdtemp(prefix="rck-fake-slurm-"))
MARKER = "rck-fake-hanging-sinfo"
(FAKE_BIN / "sinfo").write_text(f"#!/bin/bash\nexec -a {MARKER} sleep 600\n")
(FAKE_BIN / "sinfo").chmod(stat.S_IRWXU)

# Only this kernel's SLURM commands are the fakes.
KERNEL_ENV = {"RUST_CLUSTER_KERNEL_SLURM_BIN_DIR": str(FAKE_BIN)}


def hanging_commands():
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and MARKER in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(proc.name)
        except OSError:
            pass
    return found


def test_interrupt_ends_a_hanging_slurm_command(kernel, kc):
    km, _ = kernel
    msg_id = kc.execute("%sinfo")
    deadline = time.monotonic() + 30
    while not hanging_commands():
        assert time.monotonic() < deadline, "the fake sinfo never started"
        time.sleep(0.1)
    km.interrupt_kernel()
    # Past the command's own 20 s timeout the error would be a timeout, not an interrupt.
    reply = shell_reply(kc, msg_id, timeout=60)["content"]
    collect(kc, msg_id)
    assert reply["status"] == "error"
    assert reply["ename"] == "KeyboardInterrupt", reply
    assert not hanging_commands(), "the command's process group was killed"
    assert execute(kc, "%env RCK_AFTER=1").status == "ok"
