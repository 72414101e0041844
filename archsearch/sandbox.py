"""Run untrusted (model-written) Python in a subprocess sandbox.

Isolation, strongest first, whatever the host allows:
- as root with util-linux ``unshare``: new PID, network and mount namespaces (no network at all;
  every descendant dies with the sandbox's PID 1), private tmpfs over /tmp, /var/tmp and /dev/shm,
  then privileges dropped to ``nobody`` so the rest of the filesystem is read-only to the code and
  RLIMIT_NPROC caps a fork bomb;
- otherwise: its own session (killed as a group), resource limits, and an audit hook in the
  interpreter that refuses sockets and writes outside the working directory.
Always: a wall-clock timeout, an address-space limit, CPU and file-size limits, no core dumps,
and the verdict decided in a judge process the model's code cannot reach (``_sandbox_runner``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import SandboxFailed, SandboxUnavailable

_RUNNER = Path(__file__).with_name("_sandbox_runner.py")
NOBODY = 65534
_SELF_CHECK = "sandbox:self-check"
_STARTED = b"S"    # the runner's first byte on the result pipe, written just before the program runs
_HARNESS_TRIES = 3
OUTPUT_LIMIT = 32_000


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    status: str  # "passed", "failed", "timeout"
    detail: str
    seconds: float
    stdout: str = ""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 32
    max_file_mb: int = 16


@functools.cache
def _strong_isolation_available() -> bool:
    return (os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("setpriv"))
            and _uid_mapped(NOBODY))


def _uid_mapped(uid: int, uid_map: str = "/proc/self/uid_map") -> bool:
    """Whether ``uid`` exists in this user namespace: root inside ``unshare --map-root-user`` is
    uid 0 but cannot become nobody, and every sandboxed run would fail as if the program had."""
    try:
        rows = [line.split() for line in Path(uid_map).read_text().splitlines()]
    except OSError:
        return True
    return any(int(inside) <= uid < int(inside) + int(count) for inside, _, count in rows)


def _hidden_ancestors(paths: list[str]) -> list[str]:
    """The highest folder on each path that user ``nobody`` cannot pass through (e.g. /root, 0700)."""
    found: list[str] = []
    for path in paths:
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            folder = str(Path(*parts[:i]))
            try:
                if not os.stat(folder).st_mode & 0o001:
                    if folder not in found:
                        found.append(folder)
                    break
            except OSError:
                break
    return found


@functools.cache
def _interpreter_mounts() -> str:
    """Shell lines that make this interpreter and its packages reachable for ``nobody`` inside the
    sandbox's own mount namespace: each folder on their paths that nobody cannot pass through (a
    venv under /root) is covered by an empty tmpfs, and the interpreter's folders are bound back in
    at their own paths -- so the user's packages import there, and the rest of that folder (root's
    home) is not even visible."""
    import sysconfig

    keep = sorted({os.path.dirname(sys.executable), sys.prefix, sys.base_prefix, sys.exec_prefix,
                   os.path.dirname(os.path.realpath(sys.executable)),
                   *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))})
    keep = [k for k in keep if os.path.isdir(k) and not any(k != o and k.startswith(o + os.sep) for o in keep)]
    hidden = _hidden_ancestors(keep)
    keep = [k for k in keep if any(k.startswith(h + os.sep) for h in hidden)]
    if not hidden:
        return ""
    lines = []
    for i, path in enumerate(keep):
        lines.append(f"mkdir -p /tmp/.keep/{i} && mount --bind {shlex.quote(path)} /tmp/.keep/{i}")
    lines += [f"mount -t tmpfs -o mode=0755,size=1m tmpfs {shlex.quote(h)}" for h in hidden]
    for i, path in enumerate(keep):
        lines.append(f"mkdir -p {shlex.quote(path)} && mount --bind /tmp/.keep/{i} {shlex.quote(path)}")
    return "; ".join(lines) + "; "


def _limits(limits: SandboxLimits) -> dict[str, int]:
    """Applied by the runner itself before the code runs (no preexec_fn: forking a process that
    has JAX's or llama.cpp's threads running Python in the child can deadlock)."""
    return {"as": limits.memory_mb * 1024 * 1024, "nproc": limits.max_processes,
            "fsize": limits.max_file_mb * 1024 * 1024, "cpu": int(limits.timeout_s) + 2}


def _command(workdir: str, strong: bool) -> list[str]:
    if not strong:
        return [sys.executable, "-I", str(_RUNNER), workdir, "guarded"]
    inner = (
        "set -e; for d in /tmp /var/tmp /dev/shm; do [ -d $d ] && mount -t tmpfs -o size=64m tmpfs $d; done; "
        + _interpreter_mounts() +
        f"mkdir /tmp/work; chown {NOBODY}:{NOBODY} /tmp/work; cd /tmp/work; "
        f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --no-new-privs "
        f"{shlex.quote(sys.executable)} -I -c \"$ARCHSEARCH_RUNNER\" /tmp/work isolated"
    )
    return ["unshare", "--fork", "--pid", "--net", "--mount", "--kill-child", "sh", "-c", inner]


@dataclass(frozen=True)
class ProgramRun:
    """What one sandboxed run of a program, its tests and its probes showed.

    ``completed`` is True only when the harness code that runs after the tests handed back this
    run's secret: a program that exits early, hooks the exit or fakes output leaves it False.
    """

    completed: bool
    loaded: bool                 # the program itself ran without raising
    passed: tuple[bool, ...]     # per test
    outputs: tuple[str, ...]     # per probe: repr of its value, or "!ExceptionName"
    status: str                  # "passed", "failed", "timeout", "incomplete"; "not started": the sandbox failed
    detail: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Reached the end, loaded, and every test passed."""
        return self.completed and self.loaded and all(self.passed)

    @property
    def pass_rate(self) -> float:
        """Share of tests passed; 0 unless the run completed."""
        if not (self.completed and self.passed):
            return 0.0
        return sum(self.passed) / len(self.passed)


async def run_program(program: str, tests: Sequence[str] = (), probes: Sequence[str] = (),
                      limits: SandboxLimits | None = None) -> ProgramRun:
    """Run ``program`` in the candidate's process, then each test (a statement block) and each probe
    (an expression) in the judge's process against stand-ins for the program's names (see
    ``_sandbox_runner``), isolated as the module docstring says. Only a run whose judge hands back
    its secret counts; a sandbox that never started the program raises ``SandboxFailed``.

    The child is started and awaited by ``subprocess`` in a worker thread: asyncio's subprocess
    transport hung for good (on Python 3.11) about once in thousands of sandbox starts, waiting in
    ``create_subprocess_exec`` for a child watcher that never reported."""
    for attempt in range(_HARNESS_TRIES):
        run = await asyncio.to_thread(_run_blocking, program, tuple(tests), tuple(probes), limits or SandboxLimits())
        if run.status != "not started":
            return run
        if attempt + 1 < _HARNESS_TRIES:
            await asyncio.sleep(0.5 * (attempt + 1))  # a transient failure (no process slot, an overloaded host)
    raise SandboxFailed(f"{run.detail} ({_HARNESS_TRIES} tries)")


def _run_blocking(program: str, tests: tuple[str, ...], probes: tuple[str, ...], limits: SandboxLimits) -> ProgramRun:
    strong = _strong_isolation_available()
    start = time.monotonic()
    secret = secrets.token_hex(16)
    read_end, write_end = os.pipe()
    timed_out = False
    try:
        with tempfile.TemporaryDirectory(prefix="archsearch-sbx-") as workdir:
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
            if strong:
                env["ARCHSEARCH_RUNNER"] = _RUNNER.read_text()
            proc = subprocess.Popen(_command(workdir, strong), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=workdir, env=env, start_new_session=True,
                                    pass_fds=(write_end,))
            fd_number, write_end = write_end, -1
            os.close(fd_number)  # the child holds the only write end: EOF when it is gone
            payload = json.dumps({"program": program, "tests": list(tests), "probes": list(probes),
                                  "limits": _limits(limits), "result_fd": fd_number, "secret": secret}).encode()
            try:
                out, err = proc.communicate(payload + b"\n", timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                proc.wait()   # not communicate(): a stray grandchild may hold the pipes open
                out, err = b"", b""
            finally:
                _kill_group(proc.pid)
                for stream in (proc.stdin, proc.stdout, proc.stderr):
                    stream.close()
        result = _read_all(read_end)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    seconds = time.monotonic() - start
    if not result.startswith(_STARTED):
        why = f"nothing ran within {limits.timeout_s:g}s" if timed_out else _last_line(err or out, proc.returncode)
        return ProgramRun(False, False, (False,) * len(tests), (), "not started", why, seconds)
    if timed_out:
        return ProgramRun(False, False, (False,) * len(tests), (), "timeout", f"killed after {limits.timeout_s:g}s", seconds)
    return _outcome(result[len(_STARTED):], secret, proc.returncode, out, err, len(tests), seconds)


def _last_line(output: bytes, returncode: int | None) -> str:
    detail = output.decode("utf-8", "replace")[-OUTPUT_LIMIT:].strip()
    if returncode is not None and returncode < 0:
        detail = f"killed by signal {signal.Signals(-returncode).name}. {detail}".strip()
    return (detail.splitlines()[-1] if detail else f"exit code {returncode}")[:400]


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _outcome(raw: bytes, secret: str, returncode: int | None, out: bytes, err: bytes, n_tests: int,
             seconds: float) -> ProgramRun:
    try:
        result = json.loads(raw)
        genuine = isinstance(result, dict) and result.get("secret") == secret
    except ValueError:
        genuine = False
    if not genuine:
        return ProgramRun(False, False, (False,) * n_tests, (), "incomplete",
                          f"the harness did not reach its end ({_last_line(err or out, returncode)})", seconds)
    passed = tuple(bool(x) for x in result["passed"])
    outputs = tuple(str(x) for x in result["outputs"])
    ok = result["loaded"] and all(passed)
    return ProgramRun(True, bool(result["loaded"]), passed, outputs, "passed" if ok else "failed",
                      result.get("error") or "", seconds)


async def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Execute ``code``; it passes when it runs to its end without raising (exiting early fails)."""
    run = await run_program(code, (), (), limits)
    return SandboxResult(run.ok, run.status, run.detail, run.seconds)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_program_memo(program: str, tests: Sequence[str], probes: Sequence[str], limits: SandboxLimits | None,
                           memo: dict | None, requires: Sequence[str] = ()) -> ProgramRun:
    """``run_program`` with results remembered: the search checks the same program for many
    pipelines (a candidate from a shared pool), and a deterministic program need not run twice.
    Once per memo (and per set of ``requires``, the modules the task's programs import) a known-good
    program must pass first: a broken sandbox, or a package the sandbox cannot import, fails loudly
    instead of every answer scoring as wrong."""
    if memo is None:
        return await run_program(program, tests, probes, limits)
    for needed in ((), tuple(requires)) if requires else ((),):
        check_key = (_SELF_CHECK, needed)
        if check_key not in memo:   # run inline, not awaited: the first questions would otherwise each start one
            imports = "".join(f"import {name}\n" for name in needed)
            memo[check_key] = _run_blocking(imports + "def f(x):\n    return x + 1\n", ("assert f(1) == 2",), (),
                                            limits or SandboxLimits())
        if not memo[check_key].ok:
            raise SandboxUnavailable(memo[check_key].status, memo[check_key].detail, needed)
    key = hashlib.sha256(json.dumps([program, list(tests), list(probes), repr(limits)]).encode()).hexdigest()
    if key not in memo:
        memo[key] = await run_program(program, tests, probes, limits)
    return memo[key]


class RecordedRuns(dict):
    """A ``run_program_memo`` memo that also keeps its runs in a store (the call cache), so a search
    does not re-run, in the sandbox, programs an earlier search on this machine already checked:
    replaying a recorded pool, the surrogate's reading of it (every recorded program against every
    writer's tests) would otherwise cost minutes of process starts per search.

    A run is recorded under its memo key and the sandbox it ran in (Python implementation and
    minor version, isolation level, the runner's code): another of these runs the program again.
    Timeouts are kept too (a recorded pool's endless loops would cost the full timeout in every
    search), so a timeout that a loaded machine caused stays until its row is deleted, as it does
    within one search."""

    def __init__(self, store) -> None:
        super().__init__()
        self.store = store
        self._recorded: dict[str, dict] | None = None   # read on first use, not at construction

    @staticmethod
    @functools.cache
    def sandbox_id() -> str:
        return hashlib.sha256(json.dumps([sys.implementation.name, sys.version_info[:2], _strong_isolation_available(),
                                          _RUNNER.read_text()]).encode()).hexdigest()[:16]

    def _stored_key(self, key: str) -> str:
        return hashlib.sha256(f"{self.sandbox_id()}:{key}".encode()).hexdigest()

    def __contains__(self, key) -> bool:
        if super().__contains__(key):
            return True
        if not isinstance(key, str):   # the self-check runs once per search
            return False
        if self._recorded is None:
            self._recorded = self.store.sandbox_runs()
        found = self._recorded.get(self._stored_key(key))
        if found is None:
            return False
        super().__setitem__(key, ProgramRun(**{**found, "passed": tuple(found["passed"]),
                                                "outputs": tuple(found["outputs"])}))
        return True

    def __setitem__(self, key, run) -> None:
        super().__setitem__(key, run)
        if isinstance(key, str):
            self.store.put_sandbox_run(self._stored_key(key), dataclasses.asdict(run))
