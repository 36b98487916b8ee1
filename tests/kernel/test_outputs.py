"""Every output under its own cell: bytes that are not UTF-8, written by a cell to stdout or stderr,
show as U+FFFD under that cell, and the cells after it show their own output and nothing else
(evcxr's readers used to stop at such a line: every later cell then showed the cell before it).
Nor can a cell end its own run early by printing evcxr's completion marker."""
from kernelclient import execute


def check_next_cells_show_their_own_output(kc):
    """Three cells after the faulty one: each must show exactly its own stdout and stderr."""
    for word in ("alpha", "beta", "gamma"):
        run = execute(kc, f'println!("{word} out"); eprintln!("{word} err");')
        assert run.status == "ok", run.error
        assert run.stdout == f"{word} out\n", run.messages
        assert run.stderr == f"{word} err\n", run.messages


def test_bytes_that_are_not_utf8_on_stdout(kc):
    run = execute(
        kc,
        'use std::io::Write;\n'
        'std::io::stdout().write_all(b"bad \\xff\\xfe\\n").unwrap();\n'
        'std::io::stdout().flush().unwrap();',
    )
    assert run.status == "ok", run.error
    assert run.stdout == "bad \ufffd\ufffd\n"
    check_next_cells_show_their_own_output(kc)


def test_bytes_that_are_not_utf8_on_stderr_keep_stderr_and_panics(kc):
    run = execute(
        kc,
        'use std::io::Write;\n'
        'std::io::stderr().write_all(b"worse \\xc3\\x28\\n").unwrap();',
    )
    assert run.status == "ok", run.error
    assert run.stderr == "worse \ufffd(\n"
    check_next_cells_show_their_own_output(kc)
    run = execute(kc, 'panic!("still seen");')
    assert run.status == "error"
    assert "still seen" in run.error["evalue"] + "".join(run.error["traceback"])


def test_a_cell_that_prints_the_completion_marker_keeps_outputs_in_their_cells(kc):
    run = execute(
        kc,
        'println!("EVCXR_EXECUTION_COMPLETE");\n'
        'print!("tail EVCXR_EXECUTION_COMPLETE");\n'
        'std::thread::sleep(std::time::Duration::from_millis(300));\n'
        'println!("\\nlater");\n'
        '6 * 7',
    )
    assert run.status == "ok", run.error
    assert run.stdout == "EVCXR_EXECUTION_COMPLETE\ntail EVCXR_EXECUTION_COMPLETE\nlater\n"
    assert run.result == {"text/plain": "42"}
    check_next_cells_show_their_own_output(kc)


def test_content_blocks_printed_mid_cell_show_in_place(kc):
    run = execute(
        kc,
        'println!("before");\n'
        'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT");\n'
        'println!("after");',
    )
    assert run.status == "ok", run.error
    shown = [
        (m["msg_type"], m["content"].get("text") or m["content"].get("data"))
        for m in run.messages
        if m["msg_type"] in ("stream", "display_data", "execute_result")
    ]
    assert shown == [
        ("stream", "before\n"),
        ("display_data", {"text/html": "<b>bold</b>", "text/plain": "bold"}),
        ("stream", "after\n"),
    ]


def test_blocks_of_a_loop_come_one_display_each_and_a_final_value_stays_the_result(kc):
    run = execute(
        kc,
        'for i in 0..3 {\n'
        '    println!("EVCXR_BEGIN_CONTENT text/html\\n<i>{i}</i>\\nEVCXR_END_CONTENT");\n'
        '    println!("step {i}");\n'
        '}\n'
        '40 + 2',
    )
    assert run.status == "ok", run.error
    html = [m["content"]["data"]["text/html"] for m in run.of("display_data")]
    assert html == ["<i>0</i>", "<i>1</i>", "<i>2</i>"]
    assert run.stdout == "step 0\nstep 1\nstep 2\n"
    assert run.result == {"text/plain": "42"}
    # Every display comes before the text printed after it.
    kinds = [m["msg_type"] for m in run.messages if m["msg_type"] in ("stream", "display_data")]
    assert kinds[:2] == ["display_data", "stream"]
