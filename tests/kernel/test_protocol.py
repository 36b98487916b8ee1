"""The kernel over real sockets, driven by jupyter_client: every request type, busy/idle
ordering, signatures, stop_on_error, control while busy."""
import json
import os
import re
import time

import zmq
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session

from kernelclient import KERNEL_NAME, TIMEOUT, collect, execute, shell_reply


def statuses(messages):
    return [m["content"]["execution_state"] for m in messages if m["msg_type"] == "status"]


def test_kernel_info_on_shell_and_control(kc):
    msg_id = kc.kernel_info()
    reply = shell_reply(kc, msg_id)["content"]
    assert reply["status"] == "ok"
    assert reply["protocol_version"].startswith("5.")
    assert reply["implementation"] == "rust-cluster-kernel"
    info = reply["language_info"]
    assert info["name"] == "rust" and info["file_extension"] == ".rs"
    assert info["pygments_lexer"] == "rust" and info["codemirror_mode"] == "rust"
    assert info["nbconvert_exporter"] == "rust"
    assert info["version"][0].isdigit(), info["version"]
    assert reply["help_links"] and "supported_features" in reply
    assert statuses(collect(kc, msg_id)) == ["busy", "idle"]

    msg = kc.session.msg("kernel_info_request")
    kc.control_channel.send(msg)
    reply = kc.control_channel.get_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
    assert reply["content"]["implementation"] == "rust-cluster-kernel"
    assert statuses(collect(kc, msg["header"]["msg_id"])) == ["busy", "idle"]


def test_execute_orders_messages_and_counts(kc):
    first = execute(kc, 'println!("hello"); 40 + 2')
    kinds = [m["msg_type"] for m in first.messages]
    assert kinds[0] == "status" and kinds[1] == "execute_input", kinds
    assert kinds[-1] == "status" and first.messages[-1]["content"]["execution_state"] == "idle"
    assert first.stdout == "hello\n"
    assert first.result["text/plain"] == "42"
    count = first.reply["content"]["execution_count"]
    second = execute(kc, "1 + 1")
    assert second.reply["content"]["execution_count"] == count + 1
    assert second.of("execute_result")[0]["content"]["execution_count"] == count + 1


def test_silent_execution_has_no_output_and_no_count(kc):
    before = execute(kc, "0").reply["content"]["execution_count"]
    silent = execute(kc, 'println!("quiet"); 5', silent=True)
    assert silent.status == "ok"
    assert [m["msg_type"] for m in silent.messages] == ["status", "status"]
    after = execute(kc, "0").reply["content"]["execution_count"]
    assert after == before + 1


def test_state_persists_between_cells(kc):
    execute(kc, "let mut total: u64 = 0;\nfn square(x: u64) -> u64 { x * x }")
    execute(kc, "for i in 1..=3 { total += square(i); }")
    assert execute(kc, "total").result["text/plain"] == "14"


def test_print_without_newline_and_stderr(kc):
    run = execute(kc, 'eprintln!("to stderr"); print!("no newline")')
    assert run.stdout == "no newline"
    assert "to stderr\n" in run.stderr


def test_all_stderr_of_a_cell_stays_in_that_cell(kc):
    run = execute(kc, 'for i in 0..2000 { eprintln!("line {i}"); }\neprint!("partial")')
    assert run.stderr.count("\n") == 2000
    assert run.stderr.endswith("line 1999\npartial")
    assert execute(kc, "40 + 2").stderr == ""


def test_final_values_show_as_evcxr_shows_them(kc):
    assert execute(kc, "40 + 2").result["text/plain"] == "42"
    assert execute(kc, 'vec![(1, "a")]').result["text/plain"] == '[(1, "a")]'
    assert execute(kc, 'Some(String::from("x"))').result["text/plain"] == 'Some("x")'
    # In one compile: evcxr's :timing names a "fallback" phase when it compiles a second time.
    execute(kc, ":timing")
    timed = execute(kc, "40 + 2")
    execute(kc, ":timing")
    assert timed.result["text/plain"] == "42"
    assert "final compile" in timed.stdout and "fallback" not in timed.stdout


def test_evcxr_value_formats_are_honoured(kc):
    execute(kc, ":fmt {:#?}")
    assert execute(kc, "vec![1]").result["text/plain"] == "[\n    1,\n]"
    execute(kc, ":fmt")
    execute(kc, ":types")
    assert execute(kc, "7u8").result["text/plain"] == ": u8 = 7"
    execute(kc, ":types")
    assert execute(kc, "vec![1]").result["text/plain"] == "[1]"


def test_clear_keeps_the_jupyter_module_and_one_compile_values(kc):
    execute(kc, "let doomed = 1;")
    execute(kc, ":clear")
    assert execute(kc, "doomed").status == "error"
    run = execute(kc, 'jupyter::html("<i>back</i>")')
    assert [m["content"]["data"]["text/html"] for m in run.of("display_data")] == ["<i>back</i>"]
    execute(kc, ":timing")
    timed = execute(kc, "40 + 2")
    execute(kc, ":timing")
    assert timed.result["text/plain"] == "42" and "fallback" not in timed.stdout


def test_own_evcxr_display_wins_over_the_debug_form(kc):
    execute(
        kc,
        "#[derive(Debug)] struct Rows(Vec<u32>);\n"
        "impl std::ops::Deref for Rows { type Target = Vec<u32>; fn deref(&self) -> &Vec<u32> { &self.0 } }\n"
        "impl Rows { fn evcxr_display(&self) {\n"
        '    println!("EVCXR_BEGIN_CONTENT text/html\\n<b>{} rows</b>\\nEVCXR_END_CONTENT", self.len());\n'
        "} }",
    )
    assert execute(kc, "Rows(vec![1, 2])").result["text/html"].strip() == "<b>2 rows</b>"


def cache_stats(kc):
    """evcxr's `:cache` report as numbers: entries, hits (summed over entries), size limit."""
    text = execute(kc, ":cache").result["text/plain"]
    return {key: int(n) for key, n in re.findall(r"(Entries|Hits|Size limit): (\d+)", text)}


def test_compiled_dependencies_are_cached_across_sessions_by_default(tmp_path):
    # Two kernels one after the other, as a restart of the notebook's kernel, sharing only the
    # cache directory; an empty one, so that the first session's build cannot be a hit.
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("RUST_CLUSTER_KERNEL_DEP_CACHE_MB", None)  # the default, as a user gets it
    cell = ':dep itoa = "1"\nitoa::Buffer::new().format(1234u32).to_owned()'

    def session():
        km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60, env=env)
        try:
            run = execute(kc, cell)
            assert run.status == "ok", run.reply["content"]
            assert run.result["text/plain"] == '"1234"'
            return cache_stats(kc)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)

    first = session()
    assert first["Size limit"] == 1024, first
    assert first["Entries"] >= 1 and first["Hits"] == 0, first
    second = session()
    # A hit is counted only when a build finds an entry that the first session wrote; and the
    # second session compiled nothing cacheable anew (no new entry). Not the time: itoa builds
    # in about a second, less than the noise of a shared machine.
    assert second["Hits"] >= 1 and second["Entries"] == first["Entries"], (first, second)


def test_compile_error_reply(kc):
    run = execute(kc, 'let x: u32 = "text";')
    assert run.status == "error"
    content = run.reply["content"]
    assert content["ename"] == "CompileError"
    assert "mismatched types" in content["evalue"]
    tb = "\n".join(content["traceback"])
    assert 'let x: u32 = "text";' in tb and "^" in tb
    assert run.error["ename"] == "CompileError"


def test_panic_is_an_error_and_kernel_survives(kc):
    execute(kc, "let survivor = 5;")
    run = execute(kc, 'panic!("boom {}", 1)')
    assert run.status == "error"
    assert run.reply["content"]["ename"] == "Panic"
    assert "boom 1" in run.reply["content"]["evalue"]
    assert execute(kc, "survivor * 2").result["text/plain"] == "10"


def test_process_exit_in_a_cell_does_not_kill_the_kernel(kc):
    execute(kc, "let doomed = 1;")
    run = execute(kc, "std::process::exit(1)")
    assert run.status == "error"
    assert "doomed" in run.reply["content"]["evalue"]
    assert execute(kc, "2 + 2").result["text/plain"] == "4"
    quit_run = execute(kc, ":quit")
    assert quit_run.status == "error" and "Shut Down" in quit_run.reply["content"]["evalue"]
    assert execute(kc, "3 + 3").result["text/plain"] == "6"


def test_display_data_while_running(kc):
    run = execute(kc, 'jupyter::html("<b>hi</b>"); jupyter::markdown("*a*\\n*b*")')
    displays = [m["content"]["data"] for m in run.of("display_data")]
    assert displays[0]["text/html"] == "<b>hi</b>" and "text/plain" in displays[0]
    assert displays[1]["text/markdown"] == "*a*\n*b*"


def test_stop_on_error_aborts_queued_executes(kc):
    ids = [kc.execute('let broken: u32 = "x";'), kc.execute("1"), kc.execute("2")]
    replies = [shell_reply(kc, i)["content"]["status"] for i in ids]
    assert replies == ["error", "aborted", "aborted"]
    for i in ids:
        assert statuses(collect(kc, i)) == ["busy", "idle"]
    ids = [kc.execute('let broken: u32 = "x";', stop_on_error=False), kc.execute("7")]
    assert [shell_reply(kc, i)["content"]["status"] for i in ids] == ["error", "ok"]


def test_complete_counts_code_points(kc):
    execute(kc, "let größe_wert = 3;")
    code = 'let s = "é"; größe_w'
    msg_id = kc.complete(code, len(code))
    reply = shell_reply(kc, msg_id)["content"]
    assert reply["status"] == "ok"
    assert "größe_wert" in reply["matches"]
    assert reply["cursor_end"] == len(code)
    assert reply["cursor_start"] == len(code) - len("größe_w")
    msg_id = kc.complete("%lsm", 4)
    assert shell_reply(kc, msg_id)["content"]["matches"] == ["%lsmagic"]


def test_inspect(kc):
    msg_id = kc.inspect("std::vec::Vec", 12)
    reply = shell_reply(kc, msg_id)["content"]
    assert reply["status"] == "ok" and reply["found"]
    assert "Vec" in reply["data"]["text/plain"]


def test_is_complete(kc):
    cases = {
        "let x = 1;": ("complete", None),
        "fn f() {": ("incomplete", "    "),
        'let s = "open': ("incomplete", ""),
        "/* open comment": ("incomplete", ""),
        "let x = 1);": ("invalid", None),
    }
    for code, (status, indent) in cases.items():
        reply = shell_reply(kc, kc.is_complete(code))["content"]
        assert reply["status"] == status, code
        if indent is not None:
            assert reply["indent"] == indent, code


def test_history_and_comm_info(kc):
    execute(kc, "let remembered = 99;")
    reply = shell_reply(kc, kc.history(hist_access_type="tail", n=5))["content"]
    assert reply["status"] == "ok"
    assert any(entry[2] == "let remembered = 99;" for entry in reply["history"])
    reply = shell_reply(kc, kc.history(hist_access_type="search", pattern="let remembered*", n=1))["content"]
    assert reply["history"][-1][2] == "let remembered = 99;"
    msg = kc.session.msg("comm_info_request", {})
    kc.shell_channel.send(msg)
    reply = shell_reply(kc, msg["header"]["msg_id"])["content"]
    assert reply == {"status": "ok", "comms": {}}


def test_unknown_request_gets_an_error_reply(kc):
    msg = kc.session.msg("frobnicate_request", {})
    kc.shell_channel.send(msg)
    reply = shell_reply(kc, msg["header"]["msg_id"])
    assert reply["msg_type"] == "frobnicate_reply"
    assert reply["content"]["status"] == "error"
    assert statuses(collect(kc, msg["header"]["msg_id"])) == ["busy", "idle"]


def test_bad_signature_is_dropped(kernel, kc):
    km, _ = kernel
    info = km.get_connection_info()
    forged = Session(key=b"not-the-key", signature_scheme="hmac-sha256")
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(f"{info['transport']}://{info['ip']}:{info['shell_port']}")
    try:
        msg = forged.msg("kernel_info_request")
        forged.send(sock, msg)
        assert sock.poll(2000) == 0, "a message with a bad signature was answered"
        # The kernel still answers correctly signed requests.
        assert shell_reply(kc, kc.kernel_info())["content"]["status"] == "ok"
        # Garbage frames do not crash it either.
        sock.send_multipart([b"<IDS|MSG>", b"sig", b"{not json", b"{}", b"{}", b"{}"])
        sock.send_multipart([b"no delimiter"])
        assert shell_reply(kc, kc.kernel_info())["content"]["status"] == "ok"
    finally:
        sock.close(linger=0)


def test_heartbeat_echoes_exactly(kernel):
    km, _ = kernel
    info = km.get_connection_info()
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.connect(f"{info['transport']}://{info['ip']}:{info['hb_port']}")
    try:
        for payload in [b"ping", b"\x00\xffbinary", json.dumps({"x": 1}).encode()]:
            sock.send(payload)
            assert sock.poll(5000), "no heartbeat echo"
            assert sock.recv() == payload
    finally:
        sock.close(linger=0)


def test_control_and_heartbeat_answer_while_a_cell_runs(kernel, kc):
    km, _ = kernel
    msg_id = kc.execute("std::thread::sleep(std::time::Duration::from_secs(3));")
    time.sleep(1.0)
    msg = kc.session.msg("kernel_info_request")
    kc.control_channel.send(msg)
    reply = kc.control_channel.get_msg(timeout=2)
    assert reply["msg_type"] == "kernel_info_reply"
    assert kc.hb_channel.is_beating()
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    collect(kc, msg_id)


def test_interrupt_while_running_keeps_the_kernel(kernel, kc):
    km, _ = kernel
    execute(kc, "let before_interrupt = 1;\nfn still_defined() -> u8 { 8 }")
    msg_id = kc.execute("let new_var = 2; std::thread::sleep(std::time::Duration::from_secs(60));")
    time.sleep(2.5)
    km.interrupt_kernel()
    reply = shell_reply(kc, msg_id, timeout=30)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert "before_interrupt" in reply["evalue"]  # the variables that were lost are named
    collect(kc, msg_id)
    assert execute(kc, "still_defined()").result["text/plain"] == "8"


def test_interrupt_while_compiling_keeps_variables(kernel, kc):
    km, _ = kernel
    execute(kc, "let kept = 41;")
    # A dependency build takes seconds: interrupt it. Not from evcxr's cache of compiled crates,
    # which an earlier run may have filled (then the build ends before the interrupt).
    execute(kc, ":cache 0")
    msg_id = kc.execute(':dep regex = "1"\nlet never = 1;')
    time.sleep(2.0)
    km.interrupt_kernel()
    reply = shell_reply(kc, msg_id, timeout=60)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert "every variable is kept" in reply["evalue"]
    collect(kc, msg_id)
    assert execute(kc, "kept + 1").result["text/plain"] == "42"


def test_restart_gives_a_working_kernel(kernel):
    km, kc = kernel
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    run = execute(kc, "6 * 7")
    assert run.result["text/plain"] == "42"
    assert run.reply["content"]["execution_count"] == 1
