"""Every output under its own cell: bytes that are not UTF-8, written by a cell to stdout or stderr,
show as U+FFFD under that cell, and the cells after it show their own output and nothing else
(evcxr's readers used to stop at such a line: every later cell then showed the cell before it)."""
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
