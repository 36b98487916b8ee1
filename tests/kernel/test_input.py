"""Input from cells: evcxr_input's get_string and get_password (as a user writes them, after
`:dep evcxr_input = "1"`) and %%python's input() become input_requests on the stdin channel; a
client that takes no input gets an error, an interrupt ends the wait, and only signed, new
input_replies count."""
import queue
import sys

import nbformat
import pytest
from jupyter_client.session import Session
from nbclient import NotebookClient

from kernelclient import KERNEL_NAME, TIMEOUT, Run, collect, execute, shell_reply

# %%python runs on the test venv's Python (it has ipykernel).
KERNEL_ENV = {"RUST_CLUSTER_KERNEL_PYTHON": sys.executable}


@pytest.fixture(scope="module", autouse=True)
def evcxr_input(kernel):
    """What a user does once per session to read input in Rust cells."""
    run = execute(kernel[1], ':dep evcxr_input = "1"')
    assert run.status == "ok", run.reply["content"]


def ask(kc, code):
    """Sends `code` as a cell that accepts input; returns its msg_id and its input_request."""
    msg_id = kc.execute(code, allow_stdin=True)
    request = kc.get_stdin_msg(timeout=TIMEOUT)
    return msg_id, request


def finish(kc, msg_id):
    return Run(shell_reply(kc, msg_id), collect(kc, msg_id))


def no_input_request(kc):
    """True when no input_request is waiting on the stdin channel."""
    try:
        kc.get_stdin_msg(timeout=0.5)
    except queue.Empty:
        return True
    return False


def test_get_string_shows_the_prompt_and_the_cell_uses_the_answer(kc):
    msg_id, request = ask(
        kc,
        'print!("Hello, ");\nlet name = evcxr_input::get_string("Your name: ");\nformat!("hi {name}")',
    )
    assert request["msg_type"] == "input_request"
    assert request["parent_header"]["msg_id"] == msg_id, "the execute_request is its parent"
    # The whole prompt, its colon included (evcxr alone would cut it at the colon).
    assert request["content"] == {"prompt": "Your name: ", "password": False}
    kc.input("Ada Lovelace")
    run = finish(kc, msg_id)
    assert run.status == "ok", run.reply["content"]
    assert run.result["text/plain"] == '"hi Ada Lovelace"'
    assert run.stdout == "Hello, "
    # The answer is an ordinary variable of the session.
    assert execute(kc, "name.len()").result["text/plain"] == "12"


def test_get_password_asks_in_a_password_box(kc):
    msg_id, request = ask(kc, 'let token = evcxr_input::get_password("Token: ");\ntoken.len()')
    assert request["content"] == {"prompt": "Token: ", "password": True}
    kc.input("s3cret")
    run = finish(kc, msg_id)
    assert run.status == "ok", run.reply["content"]
    assert run.result["text/plain"] == "6"


def test_a_client_without_stdin_gets_an_error_not_an_empty_answer(kc):
    assert execute(kc, "let before_refusal = 5;").status == "ok"
    run = execute(kc, 'let never = evcxr_input::get_string("Name: ");\nnever.len()', allow_stdin=False)
    assert run.status == "error"
    content = run.reply["content"]
    assert content["ename"] == "StdinNotImplementedError"
    assert "allow_stdin" in content["evalue"]
    assert "before_refusal" in content["evalue"], "the variables that were lost are named"
    assert run.error["ename"] == "StdinNotImplementedError"
    assert no_input_request(kc)
    # The kernel goes on: Rust cells run, and a client with stdin can be asked again.
    assert execute(kc, "6 * 7").result["text/plain"] == "42"
    msg_id, request = ask(kc, 'evcxr_input::get_string("again: ")')
    assert request["content"]["prompt"] == "again: "
    kc.input("yes")
    assert finish(kc, msg_id).result["text/plain"] == '"yes"'


def test_interrupt_ends_the_wait_for_input(kernel, kc):
    km, _ = kernel
    assert execute(kc, "fn kept_through_interrupt() -> u8 { 9 }").status == "ok"
    msg_id, request = ask(kc, 'let waiting = evcxr_input::get_string("never answered: ");')
    assert request["content"]["prompt"] == "never answered: "
    km.interrupt_kernel()
    run = finish(kc, msg_id)
    assert run.status == "error"
    assert run.reply["content"]["ename"] == "KeyboardInterrupt"
    after = execute(kc, "kept_through_interrupt()")
    assert after.result["text/plain"] == "9", (after.reply["content"], after.messages)
    # A later request is answered by the answer to it, not by anything left over.
    msg_id, request = ask(kc, 'evcxr_input::get_string("after: ")')
    assert request["content"]["prompt"] == "after: "
    kc.input("fresh")
    assert finish(kc, msg_id).result["text/plain"] == '"fresh"'


def test_python_input_reaches_the_frontend(kc):
    msg_id, request = ask(kc, '%%python\nname = input("Python asks: ")\nprint("got", name)')
    assert request["parent_header"]["msg_id"] == msg_id, "our execute_request is its parent"
    assert request["content"]["prompt"] == "Python asks: "
    assert request["content"]["password"] is False
    kc.input("Grace")
    run = finish(kc, msg_id)
    assert run.status == "ok", run.reply["content"]
    assert run.stdout == "got Grace\n"

    msg_id, request = ask(kc, '%%python\nimport getpass\nlen(getpass.getpass("pw: "))')
    assert request["content"] == {"prompt": "pw: ", "password": True}
    kc.input("hunter2")
    assert finish(kc, msg_id).result["text/plain"] == "7"

    # Without stdin, Python says so itself; nothing is asked.
    run = execute(kc, '%python input("no: ")', allow_stdin=False)
    assert run.status == "error"
    assert run.reply["content"]["ename"] == "StdinNotImplementedError"
    assert no_input_request(kc)


def test_python_input_wait_ends_on_interrupt(kernel, kc):
    km, _ = kernel
    assert execute(kc, "%python kept_in_python = 3").status == "ok"
    msg_id, request = ask(kc, '%%python\ninput("never answered: ")')
    assert request["content"]["prompt"] == "never answered: "
    km.interrupt_kernel()
    run = finish(kc, msg_id)
    assert run.status == "error"
    assert run.reply["content"]["ename"] == "KeyboardInterrupt"
    assert execute(kc, "%python kept_in_python").result["text/plain"] == "3"


def test_a_replayed_or_unsigned_input_reply_is_ignored(kc):
    stdin = kc.stdin_channel.socket
    # An answer the kernel accepts; its exact frames are kept.
    msg_id, request = ask(kc, 'evcxr_input::get_string("first: ")')
    accepted = kc.session.serialize(kc.session.msg("input_reply", {"value": "first"}, parent=request["header"]))
    stdin.send_multipart(accepted)
    assert finish(kc, msg_id).result["text/plain"] == '"first"'

    msg_id, request = ask(kc, 'evcxr_input::get_string("second: ")')
    # The same frames again, and an answer signed with another key: neither is an answer.
    stdin.send_multipart(accepted)
    forger = Session(key=b"not the connection key", session=kc.session.session)
    stdin.send_multipart(forger.serialize(forger.msg("input_reply", {"value": "forged"})))
    kc.input("second")
    run = finish(kc, msg_id)
    assert run.result["text/plain"] == '"second"'


def test_interrupt_ends_a_cell_that_reads_std_io_stdin(kernel, kc):
    """std::io::stdin() in a cell is evcxr's command pipe, which no frontend writes to: such a
    cell waits until it is interrupted (README, "Rust cells"); the kernel goes on after that."""
    km, _ = kernel
    code = 'println!("reading");\nlet mut line = String::new();\nstd::io::stdin().read_line(&mut line).unwrap();'
    msg_id = kc.execute(code, allow_stdin=True)
    # Once "reading" is out, the cell is in read_line.
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            assert msg["content"]["text"] == "reading\n"
            break
    km.interrupt_kernel()
    reply = shell_reply(kc, msg_id)["content"]
    collect(kc, msg_id)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert "stopped while it ran" in reply["evalue"]
    assert execute(kc, "1 + 2").result["text/plain"] == "3"


def test_nbclient_gets_an_error_in_the_cell_and_runs_on():
    """nbclient sends allow_stdin false: the cell that asks fails, the next cells run."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(':dep evcxr_input = "1"'),
        nbformat.v4.new_code_cell('evcxr_input::get_string("Name: ")'),
        nbformat.v4.new_code_cell("40 + 2"),
    ]
    NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=TIMEOUT, allow_errors=True).execute()
    [error] = nb.cells[1].outputs
    assert error["output_type"] == "error" and error["ename"] == "StdinNotImplementedError"
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == "42"
