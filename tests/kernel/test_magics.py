"""Magics through the kernel: the everyday ones, --help, and clear errors."""
import os

from kernelclient import execute


def test_lsmagic_lists_magics(kc):
    text = execute(kc, "%lsmagic").result["text/plain"]
    for name in ["%lsmagic", "%time, %%time", "%env", "%%bash", "%pwd", "%cd"]:
        assert name in text


def test_help_and_bad_flags(kc):
    run = execute(kc, "%cd --help")
    assert run.status == "ok" and "Usage: %cd" in run.stdout
    run = execute(kc, "%cd --no-such-flag")
    assert run.status == "error" and run.reply["content"]["ename"] == "UsageError"
    assert "--no-such-flag" in run.reply["content"]["evalue"]
    run = execute(kc, "%nosuchmagic")
    assert run.status == "error" and "%lsmagic" in run.reply["content"]["evalue"]
    run = execute(kc, "%bash")
    assert run.status == "error" and "%%bash" in run.reply["content"]["evalue"]


def test_bash_streams_and_fails_clearly(kc):
    # The pause makes the order of the two pipes certain; two messages show it streamed.
    run = execute(kc, "%%bash\necho one\nsleep 0.3\necho two >&2\nexit 3")
    assert run.stdout == "one\n" and run.stderr == "two\n"
    assert run.status == "error" and "3" in run.reply["content"]["evalue"]
    streams = [m["content"]["text"] for m in run.of("stream")]
    assert streams == ["one\n", "two\n"]


def test_cd_pwd_and_env_reach_rust_cells(kc, tmp_path):
    run = execute(kc, f"%cd {tmp_path}\n%env RCK_TEST_VAR=hello world")
    assert run.status == "ok"
    assert execute(kc, "%pwd").result["text/plain"] == str(tmp_path)
    run = execute(kc, 'format!("{}|{}", std::env::current_dir().unwrap().display(), std::env::var("RCK_TEST_VAR").unwrap())')
    assert run.result["text/plain"] == f'"{tmp_path}|hello world"'
    assert execute(kc, "%env RCK_TEST_VAR").result["text/plain"] == "hello world"
    execute(kc, f"%cd {os.getcwd()}")


def test_time_wraps_a_cell(kc):
    run = execute(kc, "%%time\nlet timed = 2 + 2;\ntimed")
    assert run.result["text/plain"] == "4"
    assert "Wall time:" in run.stdout
    run = execute(kc, "%time 3 + 4")
    assert run.result["text/plain"] == "7"


def test_line_magics_then_rust(kc):
    run = execute(kc, "%env RCK_MIXED=1\nstd::env::var(\"RCK_MIXED\").unwrap()")
    assert run.result["text/plain"] == '"1"'


def test_dep_with_a_relative_path_resolves_against_the_notebooks_directory(kc, tmp_path):
    """`:dep x = { path = "../x" }` in a shared notebook means next to the notebook's folder
    (%cd), not next to evcxr's build directory or the kernel's starting directory."""
    crate = tmp_path / "shapes"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "shapes"\nversion = "0.1.0"\nedition = "2021"\n')
    (crate / "src" / "lib.rs").write_text("pub fn sides(name: &str) -> u32 { if name == \"hexagon\" { 6 } else { 0 } }\n")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    try:
        assert execute(kc, f"%cd {notebooks}").status == "ok"
        run = execute(kc, ':dep shapes = { path = "../shapes" }')
        assert run.status == "ok", run.error
        assert execute(kc, 'shapes::sides("hexagon")').result == {"text/plain": "6"}
        run = execute(kc, ':dep missing = { path = "../no-such-crate" }')
        assert run.status == "error"
        assert "no-such-crate" in run.error["evalue"]
    finally:
        execute(kc, f"%cd {os.getcwd()}")
