"""%%python: a Python sub-kernel (ipykernel from the test venv) driven by this kernel as a
Jupyter client. No SLURM here; tests/cluster/test_python_on_cluster.py binds it to a cluster."""
import os
import queue
import re
import sys
import time

import pytest

from kernelclient import collect, execute, shell_reply

# The sub-kernel runs on the test venv's Python (it has ipykernel).
KERNEL_ENV = {"RUST_CLUSTER_KERNEL_PYTHON": sys.executable}


def test_state_streams_results_and_rich_output(kc):
    run = execute(kc, "%%python\nimport sys\ngreeting = 'hello'\nprint(greeting, flush=True)\nprint('warn', file=sys.stderr)\n6 * 7")
    assert run.status == "ok", run.reply["content"]
    assert run.stdout == "hello\n" and run.stderr == "warn\n"
    assert run.result["text/plain"] == "42"
    # State persists; the line form keeps quotes as written (never split like a shell).
    run = execute(kc, """%python print(greeting + " it's")""")
    assert run.stdout == "hello it's\n"
    # Rich output keeps its MIME types.
    run = execute(kc, "%%python\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))")
    [shown] = run.of("display_data")
    assert shown["content"]["data"]["text/html"] == "<b>bold</b>"
    # Rust cells still run beside it.
    assert execute(kc, "40 + 2").result["text/plain"] == "42"


def test_python_error_is_the_cells_error(kc):
    assert execute(kc, "%python before_error = 'kept'").status == "ok"
    run = execute(kc, "%%python\ndef f():\n    return 1 / 0\nf()")
    assert run.status == "error"
    content = run.reply["content"]
    assert content["ename"] == "ZeroDivisionError"
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in content["traceback"]]  # no colours
    assert any("return 1 / 0" in line for line in plain), plain
    assert run.error["ename"] == "ZeroDivisionError"
    # An error ends the cell, not the session.
    assert execute(kc, "%python before_error").result["text/plain"] == "'kept'"


def test_interrupt_stops_a_sleep_and_keeps_state(kernel, kc):
    km, _ = kernel
    assert execute(kc, "let rust_side = 7;").status == "ok"
    assert execute(kc, "%python before_sleep = 'kept'").status == "ok"
    msg_id = kc.execute("%%python\nimport time\ntime.sleep(60)")
    time.sleep(2)
    started = time.monotonic()
    km.interrupt_kernel()
    reply = shell_reply(kc, msg_id, timeout=30)
    collect(kc, msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 15
    assert execute(kc, "%python before_sleep").result["text/plain"] == "'kept'"
    # Interrupting Python stops Python only: the Rust runtime and its variables are untouched.
    assert execute(kc, "rust_side").result["text/plain"] == "7"


def test_a_dead_sub_kernel_is_reported_and_replaced(kc):
    assert execute(kc, "%python greeting = 'hello'").status == "ok"
    run = execute(kc, "%%python\nimport os\nos._exit(3)")
    assert run.status == "error"
    assert run.reply["content"]["ename"] == "PythonKernelDied"
    assert "exit status: 3" in run.reply["content"]["evalue"]
    run = execute(kc, "%python 'greeting' in globals()")
    assert "starting a fresh one" in run.stderr
    assert run.result["text/plain"] == "False"


def test_sockets_are_private_unix_sockets_not_loopback_ports(kc):
    code = (
        "%%python\n"
        "import os, stat\n"
        "from ipykernel.kernelapp import IPKernelApp\n"
        "app = IPKernelApp.instance()\n"
        "home = os.path.dirname(app.ip)\n"
        "(app.transport, oct(stat.S_IMODE(os.stat(home).st_mode)), stat.S_ISSOCK(os.stat(app.ip + '-1').st_mode))"
    )
    assert execute(kc, code).result["text/plain"] == "('ipc', '0o700', True)"


def comm_messages(kc, comm_id, seconds):
    """The comm_msg contents for comm_id that arrive on iopub within `seconds`."""
    found, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            continue
        if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
            found.append(msg["content"])
    return found


def test_widgets_live_in_python_and_talk_to_the_frontend(kc):
    run = execute(kc, "%%python\nimport ipywidgets as w\nslider = w.IntSlider(value=3)\nslider")
    assert run.status == "ok", run.reply["content"]
    opens = [m for m in run.of("comm_open") if m["content"]["data"]["state"].get("_model_name") == "IntSliderModel"]
    assert len(opens) == 1 and opens[0]["content"]["target_name"] == "jupyter.widget"
    # JupyterLab's widget manager refuses a model without the protocol version in the metadata.
    assert opens[0]["metadata"]["version"].startswith("2.")
    comm_id = opens[0]["content"]["comm_id"]
    assert run.result["application/vnd.jupyter.widget-view+json"]["model_id"] == comm_id
    # JupyterLab's widget manager asks which widgets exist (when it reconnects, say).
    info = shell_reply(kc, kc.comm_info(target_name="jupyter.widget"))["content"]
    assert comm_id in info["comms"]
    # The user moves the slider: the frontend sends the new state.
    update = {"comm_id": comm_id, "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []}}
    kc.shell_channel.send(kc.session.msg("comm_msg", update))
    assert execute(kc, "%python slider.value").result["text/plain"] == "7"
    # Python changes it after the cell has ended (as a progress bar does): the frontend hears it.
    execute(kc, "%python import threading; threading.Timer(0.5, lambda: setattr(slider, 'value', 9)).start()")
    states = [m["data"].get("state", {}) for m in comm_messages(kc, comm_id, 10)]
    assert {"value": 9} in states


def test_python_env_shows_the_interpreter(kc):
    run = execute(kc, "%python_env")
    text = run.result["text/plain"]
    assert sys.executable in text and "RUST_CLUSTER_KERNEL_PYTHON" in text
    assert "running (pid" in text
    run = execute(kc, "%python_env --python /no/such/python")
    assert run.status == "error" and "/no/such/python" in run.reply["content"]["evalue"]
    run = execute(kc, "%python_env --restart")
    assert "not started" in run.result["text/plain"]


def test_restart_of_the_kernel_ends_the_python_kernel(kernel, kc):
    km, _ = kernel
    pid = int(execute(kc, "%python import os; greeting = 'hello'; os.getpid()").result["text/plain"])
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the Python kernel {pid} outlived the restart")
    assert execute(kc, "%python 'greeting' in globals()").result["text/plain"] == "False"
