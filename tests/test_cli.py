"""The mimo command line, run in a subprocess: each command, its output and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

TARGETS = textwrap.dedent(
    """
    import asyncio
    from mimo import Stream, Workflow

    async def numbers(ins, outs, state):
        for i in range(10):
            await outs.n.push(i)

    async def total(ins, outs, state):
        state["sum"] = 0
        async for n in ins.n:
            state["sum"] += n

    def build():
        wf = Workflow(name="sums")
        wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["n"], fn=total))
        return wf

    async def shout(ins, outs, state):
        async for n in ins.n:
            print("got", n)

    def printing():
        wf = Workflow(name="printing")
        wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["n"], fn=shout))
        return wf

    async def boom(ins, outs, state):
        async for n in ins.n:
            if n == 3:
                raise ValueError("bad item 3")

    def failing():
        wf = Workflow()
        wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["n"], fn=boom))
        return wf

    async def ask(ins, outs, state):
        await ins.answer.pop()

    def deadlocked():
        wf = Workflow()
        a = wf.add_stream(Stream(["answer"], ["question"], fn=ask, name="a"))
        b = wf.add_stream(Stream(["answer"], ["question"], fn=ask, name="b"))
        a.pipe(b)
        b.pipe(a)
        return wf

    def wrong():
        wf = Workflow()
        wf.add_stream(Stream(outs={"n": str})).pipe(Stream(ins={"n": int}))
        return wf

    def loose():
        wf = Workflow(name="loose")
        wf.add_stream(Stream(["unused"], fn=total, name="lonely"))
        return wf

    not_a_workflow = 42

    from mimo import In, Out, stream

    @stream
    async def count(out: Out[int]) -> None:
        for i in range(5):
            await out.push(i)

    @stream
    async def show(inp: In[int]) -> None:
        async for i in inp:
            print("saw", i)

    chain = count | show
    """
)


@pytest.fixture
def targets(tmp_path: Path) -> Path:
    path = tmp_path / "targets.py"
    path.write_text(TARGETS)
    (tmp_path / "broken.py").write_text("raise RuntimeError('cannot even import')\n")
    (tmp_path / "two.py").write_text("from mimo import Workflow\nfirst = Workflow()\nsecond = Workflow()\n")
    return path


def mimo(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mimo", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=50
    )


def test_run_runs_the_build_function_and_prints_the_report_table_on_stderr(targets):
    r = mimo("run", str(targets))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "stream" in r.stderr and "numbers" in r.stderr and "total" in r.stderr
    assert "sums ran" in r.stderr


def test_run_with_capacity_and_a_json_report_on_stdout(targets):
    # --json - writes the report to stdout, and --quiet leaves stderr empty.
    r = mimo("run", f"{targets}:build", "--capacity", "3", "--json", "-", "--quiet")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert r.stderr == ""
    assert data["capacity"] == 3
    assert data["streams"]["total"]["items_in"] == {"n": 10}
    assert data["name"] == "sums"


def test_the_report_can_go_to_a_json_file_beside_the_workflows_output(targets, tmp_path):
    r = mimo("run", f"{targets}:printing", "--json", str(tmp_path / "report.json"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"got {i}" for i in range(10)]
    assert json.loads((tmp_path / "report.json").read_text())["streams"]["shout"]["items_in"] == {"n": 10}
    assert "printing ran" in r.stderr


def test_the_workflows_own_output_stays_on_stdout(targets):
    r = mimo("run", f"{targets}:printing", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"got {i}" for i in range(10)]
    assert r.stderr == ""


def test_run_and_draw_a_dsl_chain(targets):
    r = mimo("run", f"{targets}:chain", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"saw {i}" for i in range(5)]
    r = mimo("graph", f"{targets}:chain", "--format", "mermaid")
    assert r.returncode == 0, r.stderr
    assert '"count"' in r.stdout and '"show"' in r.stdout


def test_without_attr_the_only_graph_in_the_module_is_used(targets):
    # No 'workflow' and no 'build': the one DSL chain is the target.
    (targets.parent / "only.py").write_text(TARGETS.replace("def build", "def build_sums"))
    r = mimo("run", "only.py", "--quiet", cwd=targets.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"saw {i}" for i in range(5)]


def test_run_a_module_attribute_by_import_path(targets):
    r = mimo("run", "targets:build", "--quiet", cwd=targets.parent)
    assert r.returncode == 0, r.stderr


def test_run_with_plain_progress_writes_progress_lines_to_stderr(targets):
    r = mimo("run", f"{targets}:build", "--progress", "plain", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "[sums " in r.stderr and "total: in=10 out=0" in r.stderr


def test_run_can_draw_the_graph_with_the_runs_figures(targets, tmp_path):
    r = mimo("run", f"{targets}:build", "--quiet", "--graph", str(tmp_path / "ran.svg"))
    assert r.returncode == 0, r.stderr
    assert ">10</text>" in (tmp_path / "ran.svg").read_text()


def test_a_failing_stream_exits_1_naming_the_stream_and_error(targets):
    r = mimo("run", f"{targets}:failing")
    assert r.returncode == 1
    assert "ValueError: bad item 3" in r.stderr
    assert "the run failed in stream 'boom'" in r.stderr
    assert r.stdout == ""


def test_a_deadlock_exits_1_saying_who_waits_on_what(targets):
    r = mimo("run", f"{targets}:deadlocked")
    assert r.returncode == 1
    assert "DeadlockError" in r.stderr and "'a' waits to pop" in r.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nowhere.py", "no such file: nowhere.py"),
        ("no_such_module_here", "no module named 'no_such_module_here'"),
        ("targets.py:missing", "has no attribute 'missing'"),
        ("targets.py:not_a_workflow", "is int, not a Workflow"),
        (
            "two.py",
            "say which workflow to use, as two.py:NAME (no 'workflow' or 'build' there, and it defines first, second)",
        ),
        ("broken.py", "cannot even import"),
    ],
)
def test_a_target_that_cannot_be_loaded_exits_3(targets, target, message):
    r = mimo("run", target, cwd=targets.parent)
    assert r.returncode == 3
    assert message in r.stderr
    assert r.stdout == ""


def test_a_wrong_graph_exits_4_from_run_and_check(targets):
    for command in ("run", "check"):
        r = mimo(command, f"{targets}:wrong")
        assert r.returncode == 4
        assert "the graph is wrong" in r.stderr and "produces str" in r.stderr


def test_check_passes_a_good_graph(targets):
    r = mimo("check", f"{targets}:build")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "sums: ok (2 streams, 1 joins, 0 warnings)"


def test_check_warns_of_an_input_joined_to_nothing_and_fails_with_strict(targets):
    r = mimo("check", f"{targets}:loose")
    assert r.returncode == 0
    assert "warning: input lonely.unused is joined to nothing" in r.stderr
    r = mimo("check", f"{targets}:loose", "--strict")
    assert r.returncode == 4
    assert r.stdout == ""


def test_graph_writes_dot_or_mermaid_to_stdout(targets):
    sys.path.insert(0, str(targets.parent))
    try:
        import targets as mod  # the same file, for the expected text

        expected = mod.build()
    finally:
        sys.path.remove(str(targets.parent))
        sys.modules.pop("targets", None)
    r = mimo("graph", f"{targets}:build")
    assert r.returncode == 0
    assert r.stdout == expected.to_dot()
    r = mimo("graph", f"{targets}:build", "--format", "mermaid")
    assert r.stdout == expected.to_mermaid()


@pytest.mark.parametrize("suffix", [".svg", ".png", ".dot", ".mmd"])
def test_graph_writes_a_file_whose_suffix_picks_the_format(targets, tmp_path, suffix):
    out = tmp_path / f"flow{suffix}"
    r = mimo("graph", f"{targets}:build", "-o", str(out))
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    starts = {".svg": b"<?xml", ".png": b"\x89PNG", ".dot": b'digraph "sums"', ".mmd": b"flowchart LR"}
    assert data.startswith(starts[suffix])


def test_graph_without_graphvizs_dot_exits_5_saying_what_to_install(targets, tmp_path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    r = mimo("graph", f"{targets}:build", "-o", str(tmp_path / "flow.svg"), env=env)
    assert r.returncode == 5
    assert "install Graphviz" in r.stderr


@pytest.mark.parametrize(
    "args",
    [["run"], ["frobnicate", "x.py"], ["run", "x.py", "--capacity", "-1"], ["run", "x.py", "--progress", "loud"]],
)
def test_a_bad_command_line_exits_2_with_one_line_on_stderr(args):
    r = mimo(*args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("mimo") and "error: " in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("command", [[], ["run"], ["graph"], ["check"]])
def test_help_everywhere(command):
    r = mimo(*command, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(f"usage: mimo {command[0] if command else ''}".rstrip())
    assert "exit codes:" in r.stdout


def test_the_console_script_is_installed_and_is_the_same_command(targets):
    script = Path(sys.executable).with_name("mimo")
    r = subprocess.run([str(script), "check", f"{targets}:build"], capture_output=True, text=True, timeout=50)
    assert r.returncode == 0, r.stderr
    assert "sums: ok" in r.stdout


# -- issue 9: usage errors, sys.argv, process pools, SIGTERM ------------------------------------


@pytest.fixture
def marked(tmp_path: Path) -> Path:
    """A target that leaves a file behind when it is loaded: a usage error must not load it."""
    path = tmp_path / "marked.py"
    path.write_text(
        TARGETS + "\nimport pathlib\npathlib.Path(__file__).with_name('loaded').write_text('yes')\n", encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["graph", "{t}", "-o", "{d}/logs.txt"],
        ["graph", "{t}", "-o", "{d}/flow"],
        ["graph", "{t}", "-o", "{d}/flow.svg", "--format", "mermaid"],
        ["graph", "{t}", "-o", "{d}/no/such/folder/flow.dot"],
        ["graph", "{t}", "--format", "png"],
        ["run", "{t}", "--graph", "{d}/logs.txt"],
        ["run", "{t}", "--graph", "-"],
        ["run", "{t}", "--graph", "{d}/no/such/folder/flow.svg"],
        ["run", "{t}", "--json", "{d}/no/such/folder/report.json"],
        ["run", "{t}", "--json", "{d}"],
        ["run", "{t}", "--capacity", "many"],
        ["run", "{t}", "extra"],
        ["check", "{t}", "--strict=yes"],
    ],
)
def test_a_bad_option_value_is_a_usage_error_before_anything_loads(marked, tmp_path, args):
    r = mimo(*(a.format(t=marked, d=tmp_path) for a in args))
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith((f"mimo {args[0]}: error: ", "mimo: error: unrecognized arguments: extra"))
    assert "Traceback" not in r.stderr and "the run failed" not in r.stderr
    assert not (tmp_path / "loaded").exists()


ARGV = textwrap.dedent(
    """
    import sys
    from mimo import lib

    print("loading", sys.argv)
    seen = []
    workflow = lib.range(1) | lib.for_each(lambda _: print("running", sys.argv))

    if __name__ == "__main__":
        print("the main block ran")
    """
)


def test_the_loaded_file_sees_its_path_and_the_arguments_after_double_dash(tmp_path):
    (tmp_path / "argv_seen.py").write_text(ARGV, encoding="utf-8")
    r = mimo("run", "argv_seen.py", "-q", "--", "a", "--b", "-c", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    expected = ["argv_seen.py", "a", "--b", "-c"]
    assert r.stdout.splitlines() == [f"loading {expected}", f"running {expected}"]
    for command in ("check", "graph"):
        r = mimo(command, str(tmp_path / "argv_seen.py"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == f"loading {[str(tmp_path / 'argv_seen.py')]}"


def test_main_in_process_puts_back_argv_path_modules_and_the_sigterm_handler(tmp_path, capsys):
    import signal

    from mimo._cli import main

    (tmp_path / "argv_inproc.py").write_text(ARGV, encoding="utf-8")
    before = (sys.argv[:], sys.path[:], signal.getsignal(signal.SIGTERM))
    assert main(["run", str(tmp_path / "argv_inproc.py"), "-q", "--", "x"]) == 0
    assert f"loading {[str(tmp_path / 'argv_inproc.py'), 'x']}" in capsys.readouterr().out
    assert (sys.argv, sys.path, signal.getsignal(signal.SIGTERM)) == before
    assert "argv_inproc" not in sys.modules


@pytest.mark.parametrize(("name", "message"), [("json.py", "already the module at"), ("flow.v2.py", "no dots")])
def test_a_file_that_cannot_be_imported_by_its_own_name_is_a_load_error(tmp_path, name, message):
    (tmp_path / name).write_text("from mimo import lib\nworkflow = lib.range(1) | lib.collect()\n", encoding="utf-8")
    r = mimo("run", str(tmp_path / name))
    assert r.returncode == 3, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


POOLED = textwrap.dedent(
    """
    import multiprocessing
    import os

    from mimo import lib

    # What a user writes to choose the start method: at the top, since mimo does
    # not run the `if __name__ == "__main__":` block (force: workers import this too).
    multiprocessing.set_start_method(os.environ["START_METHOD"], force=True)


    def square(x: int) -> int:
        return x * x


    def build():
        return lib.range(40) | lib.map(square, workers=2, executor="process") | lib.for_each(print)


    if __name__ == "__main__":
        print("the main block ran")
    """
)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_process_pool_works_under_every_start_method(tmp_path, method):
    (tmp_path / "pooled_flow.py").write_text(POOLED, encoding="utf-8")
    (tmp_path / "helper_module.py").write_text("", encoding="utf-8")
    r = mimo("run", "pooled_flow.py", "-q", cwd=tmp_path, env=dict(os.environ, START_METHOD=method))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(i * i) for i in range(40)]
    assert r.stderr == ""


SIGNALLED = textwrap.dedent(
    """
    import asyncio
    import sys
    from pathlib import Path

    from mimo import Stream, Workflow

    here = Path(sys.argv[1])


    async def numbers(ins, outs, state):
        try:
            await outs.n.push(1)
            (here / "started").write_text("yes")
            await asyncio.Event().wait()
        finally:
            (here / "source finally").write_text("ran")


    async def keep(ins, outs, state):
        try:
            async for n in ins.n:
                pass
        finally:
            (here / "sink finally").write_text("ran")


    def build():
        wf = Workflow(name="hangs")
        wf.add_stream(Stream(outs=["n"], fn=numbers)).pipe(Stream(["n"], fn=keep))
        return wf
    """
)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("signame", "code", "says"), [("SIGTERM", 143, "terminated (SIGTERM)"), ("SIGINT", 130, "interrupted")]
)
def test_sigterm_and_ctrl_c_tear_the_run_down_and_exit_with_their_own_code(tmp_path, signame, code, says):
    import signal
    import time

    (tmp_path / "signalled.py").write_text(SIGNALLED, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mimo", "run", str(tmp_path / "signalled.py"), "--", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert (tmp_path / "source finally").read_text() == "ran"
    assert (tmp_path / "sink finally").read_text() == "ran"
    assert err.strip().splitlines()[-1].startswith(f"mimo: {says}")
    assert "Traceback" not in err and out == ""


@pytest.mark.timeout(40)
def test_a_process_pool_works_under_spawn_from_the_console_script(tmp_path):
    # spawn re-runs the parent's __main__ (here the `mimo` script) in each worker.
    (tmp_path / "pooled_script.py").write_text(POOLED, encoding="utf-8")
    script = Path(sys.executable).with_name("mimo")
    r = subprocess.run(
        [str(script), "run", "pooled_script.py", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, START_METHOD="spawn"),
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(i * i) for i in range(40)]


def test_a_build_function_that_needs_arguments_is_a_load_error_saying_so(tmp_path):
    (tmp_path / "needs_args.py").write_text(
        "from mimo import lib\n\ndef build(n):\n    return lib.range(n) | lib.collect()\n", encoding="utf-8"
    )
    r = mimo("run", str(tmp_path / "needs_args.py"))
    assert r.returncode == 3
    assert "build() needs arguments, and mimo calls it with none" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_reader_that_closes_standard_output_ends_the_command_quietly(targets):
    # As `mimo graph ... | head -1` does once head has its line.
    proc = subprocess.Popen(
        [sys.executable, "-m", "mimo", "graph", f"{targets}:build"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before mimo has loaded the file and writes
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 141, err
    assert err == ""


@pytest.mark.timeout(30)
def test_sigterm_while_the_dashboard_lingers_reports_the_finished_run_as_ctrl_c_does(tmp_path):
    import signal

    pytest.importorskip("aiohttp", reason="the dashboard needs mimo[web]")
    (tmp_path / "tiny_flow.py").write_text("from mimo import lib\nworkflow = lib.range(3) | lib.collect()\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mimo", "run", str(tmp_path / "tiny_flow.py"), "--dashboard", "--json", "-", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = []
        while not any("stays up" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["streams"]["collect"]["items_in"] == {"inp": 3}
