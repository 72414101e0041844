"""Hostile model-written code is stopped, reported as a failed test, and the host is unharmed."""

import asyncio
import os
import socket
import threading
import time

import pytest

from archsearch.sandbox import SandboxLimits, run_python

FAST = SandboxLimits(timeout_s=3.0, memory_mb=512)


def run(code, limits=FAST):
    return asyncio.run(run_python(code, limits))


def test_good_code_passes_and_failed_assert_fails():
    assert run("assert sum([1, 2]) == 3").passed
    result = run("assert sum([1, 2]) == 4")
    assert not result.passed and "AssertionError" in result.detail


def test_infinite_loop_is_killed_on_time():
    start = time.monotonic()
    result = run("while True:\n    pass")
    assert result.status == "timeout" and not result.passed
    assert time.monotonic() - start < 6


def test_fork_bomb_is_contained():
    before = len(os.listdir("/proc"))
    result = run("import os\nwhile True:\n    os.fork()")
    assert not result.passed
    time.sleep(0.5)
    assert len(os.listdir("/proc")) < before + 20  # nothing left running on the host


def test_huge_allocation_fails_without_hurting_the_host():
    result = run("x = bytearray(10 * 1024 ** 3)")
    assert not result.passed and "MemoryError" in result.detail


def test_cannot_write_outside_its_directory(tmp_path):
    target = tmp_path / "owned.txt"
    result = run(f"open({str(target)!r}, 'w').write('x')")
    assert not result.passed and not target.exists()


def test_writing_inside_its_directory_is_allowed():
    assert run("open('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'").passed


def test_no_network():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:   # shut down below with nothing connected
            pass

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)")
    server.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept (closing alone does not)
    listener.join(timeout=5)
    server.close()
    assert not result.passed and not accepted


def test_children_die_with_the_sandbox(tmp_path):
    marker = "archsearch-sandbox-orphan-check"
    code = (f"import subprocess\nsubprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 600'])\n"
            "import time\ntime.sleep(60)")
    result = run(code)
    assert result.status == "timeout"
    time.sleep(0.3)
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith(marker)]
    assert leftovers == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("code", ["raise SystemExit(3)", "import sys; sys.exit('bye')", "def f(:\n  pass"])
def test_other_failures_are_failed_tests(code):
    assert not run(code).passed


def test_root_of_a_user_namespace_without_nobody_falls_back_to_the_guarded_runner(tmp_path):
    """Inside `unshare --map-root-user` uid 0 is mapped but nobody is not: the strong sandbox would
    fail every program (chown to nobody is refused), so it must not be chosen."""
    import shutil
    import subprocess
    import sys

    from archsearch.sandbox import _uid_mapped

    only_root = tmp_path / "uid_map"
    only_root.write_text("         0          0          1\n")
    full = tmp_path / "full"
    full.write_text("         0          0 4294967295\n")
    assert not _uid_mapped(65534, str(only_root)) and _uid_mapped(65534, str(full))
    if shutil.which("unshare") is None:
        pytest.skip("no unshare on this machine")
    code = ("import asyncio; from archsearch.sandbox import run_program; "
            "r = asyncio.run(run_program('def f(x): return x + 1', ['assert f(1) == 2'])); print(r.ok, r.detail)")
    out = subprocess.run(["unshare", "--map-root-user", sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0 and "Operation not permitted" in out.stderr:
        pytest.skip("user namespaces are disabled on this machine")
    assert out.stdout.startswith("True"), out.stdout + out.stderr


def test_a_sandbox_that_cannot_run_a_trivial_program_fails_loudly():
    """Forced onto the strong path where nobody does not exist, every program fails: the first
    memoised run says so with one error instead of scoring every answer as wrong."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("no unshare on this machine")
    code = ("import asyncio, archsearch.sandbox as s\n"
            "s._uid_mapped = lambda *a, **k: True\n"
            "try:\n"
            "    asyncio.run(s.run_program_memo('def f(x): return x + 1', ['assert f(1) == 2'], (), None, {}))\n"
            "    print('scored')\n"
            "except s.SandboxUnavailable as exc:\n"
            "    print('refused:', exc)\n")
    out = subprocess.run(["unshare", "--map-root-user", sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0 and "Operation not permitted" in out.stderr:
        pytest.skip("user namespaces are disabled on this machine")
    assert out.stdout.startswith("refused: the code sandbox cannot run a trivial program"), out.stdout + out.stderr
    assert "\n" not in out.stdout.strip()


def test_a_sandbox_that_fails_before_the_program_starts_is_unscored_not_wrong(monkeypatch):
    """A transient failure of the sandbox itself (here: a runner that never starts) is retried, then
    raised as SandboxFailed -- an unscored question, reported apart -- and not remembered as a
    wrong answer; a program that ends early after it started is still the program's failure."""
    import archsearch.sandbox as sandbox
    from archsearch.errors import SandboxFailed, Unscored
    from archsearch.evaluate import score_record

    early = run("import os\nos._exit(0)")
    assert early.status == "failed" and not early.passed  # scored: it started, and failed
    memo = {}
    asyncio.run(sandbox.run_program_memo("x = 1", [], (), FAST, memo))  # the self-check passes first
    remembered = set(memo)
    broken = ["sh", "-c", "echo 'unshare: fork failed: Resource temporarily unavailable' >&2; exit 1"]
    monkeypatch.setattr(sandbox, "_command", lambda workdir, strong: broken)
    with pytest.raises(SandboxFailed, match="Resource temporarily unavailable .3 tries"):
        asyncio.run(sandbox.run_program_memo("def f(x):\n    return x\n", ["assert f(1) == 1"], (), FAST, memo))
    assert set(memo) == remembered  # the program that never ran is not remembered
    monkeypatch.setattr(sandbox, "_command", lambda workdir, strong: ["sleep", "30"])
    with pytest.raises(SandboxFailed, match="nothing ran within 1s"):
        asyncio.run(sandbox.run_program("x = 1", limits=SandboxLimits(timeout_s=1.0)))

    class Scorer:
        async def score(self, answer, record, client, memo):
            raise SandboxFailed("no process slot")

    class Task:
        scorer = Scorer()

        def question(self, record):
            return "q"

    class Pipe:
        sandbox_memo, client = None, None

        async def acall(self, question):
            from archsearch.pipeline import Result
            return Result("42", "42")

    class Record:
        id = "r1"

    outcome = asyncio.run(score_record(Pipe(), Task(), Record()))
    assert outcome.error and "no process slot" in outcome.error and not outcome.correct
    assert issubclass(SandboxFailed, Unscored)


def test_tests_run_in_the_judge_against_stand_ins_for_the_programs_names():
    """The judge sees the program's modules, plain values and functions (called across the pipe);
    a candidate's exception arrives as the same builtin type; only plain values cross."""
    from archsearch.sandbox import run_program

    program = ("import math\nLIMIT = 3\n\ndef root(x):\n    return math.sqrt(x)\n\n"
               "def pairs(n):\n    return [(i, {i: str(i)}, {i}) for i in range(n)]\n\n"
               "def boom(x):\n    return 1 / x\n\ndef gen():\n    yield 1\n")
    tests = ["assert root(4) == 2.0 and math.floor(2.5) == 2 and LIMIT == 3",
             "assert pairs(2) == [(0, {0: '0'}, {0}), (1, {1: '1'}, {1})]",
             "try:\n    boom(0)\n    raise AssertionError('no error')\nexcept ZeroDivisionError:\n    pass",
             "assert list(gen()) == [1]"]
    run = asyncio.run(run_program(program, tests, ["root(9)", "boom(0)", "gen()", "pairs(1)"], FAST))
    assert run.completed and run.loaded
    assert run.passed == (True, True, True, False)
    assert run.outputs == ("3.0", "!ZeroDivisionError", "!TypeError", "[(0, {0: '0'}, {0})]")


def test_programs_import_the_users_packages_and_requires_is_checked_once():
    """The sandbox runs this interpreter, with its packages (numpy here), also as root under the
    strong isolation (a venv under /root is bound into the sandbox's own mount namespace); a task's
    ``requires`` that the sandbox cannot import is one error, not every answer scored wrong."""
    import asyncio

    from archsearch.errors import SandboxUnavailable
    from archsearch.sandbox import run_program_memo

    program = "import numpy as np\ndef mean(xs):\n    return float(np.mean(xs))\n"
    run = asyncio.run(run_program_memo(program, ["assert mean([1, 2, 3]) == 2.0"], [], None, {}, requires=["numpy"]))
    assert run.ok, run.detail
    with pytest.raises(SandboxUnavailable) as caught:
        asyncio.run(run_program_memo("x = 1", ["assert x == 1"], [], None, {}, requires=["a_missing_package"]))
    message = str(caught.value)
    assert "\n" not in message and "requires: a_missing_package" in message and "No module named" in message


def test_recorded_runs_outlive_the_search_that_ran_them(tmp_path, monkeypatch):
    """A run kept in the call cache, a timeout too, answers the next search without a sandbox;
    another interpreter or runner does not see the record."""
    import archsearch.sandbox as sandbox
    from archsearch.llm.cache import CallCache, sqlite_url

    url = sqlite_url(str(tmp_path / "calls.sqlite"))
    program, tests, probes = "def f(x):\n    return x + 1\n", ["assert f(1) == 2", "assert f(1) == 3"], ["f(41)"]
    first = asyncio.run(sandbox.run_program_memo(program, tests, probes, FAST, sandbox.RecordedRuns(CallCache(url))))
    slow = asyncio.run(sandbox.run_program_memo("while True:\n    pass", [], [], SandboxLimits(timeout_s=1.0),
                                                sandbox.RecordedRuns(CallCache(url))))
    assert first.passed == (True, False) and first.outputs == ("42",) and slow.status == "timeout"

    def no_sandbox(*args):
        raise AssertionError("ran in the sandbox again")
    monkeypatch.setattr(sandbox, "run_program", no_sandbox)
    again = asyncio.run(sandbox.run_program_memo(program, tests, probes, FAST, sandbox.RecordedRuns(CallCache(url))))
    assert again == first
    assert asyncio.run(sandbox.run_program_memo("while True:\n    pass", [], [], SandboxLimits(timeout_s=1.0),
                                                sandbox.RecordedRuns(CallCache(url)))) == slow
    monkeypatch.setattr(sandbox.RecordedRuns, "sandbox_id", staticmethod(lambda: "another-python"))
    with pytest.raises(AssertionError, match="sandbox again"):
        asyncio.run(sandbox.run_program_memo(program, tests, probes, FAST, sandbox.RecordedRuns(CallCache(url))))
