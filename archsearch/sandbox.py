"""Run untrusted (model-written) Python in a subprocess sandbox.

Isolation, strongest first, whatever the host allows:
- as root with util-linux ``unshare``: new PID, network and mount namespaces (no network at all;
  every descendant dies with the sandbox's PID 1), private tmpfs over /tmp, /var/tmp and /dev/shm,
  then privileges dropped to ``nobody`` so the rest of the filesystem is read-only to the code and
  RLIMIT_NPROC caps a fork bomb;
- otherwise: its own session (killed as a group), resource limits, and an audit hook in the
  interpreter that refuses sockets and writes outside the working directory.
Always: a wall-clock timeout, an address-space limit, CPU and file-size limits, no core dumps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_RUNNER = Path(__file__).with_name("_sandbox_runner.py")
NOBODY = 65534
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


def _strong_isolation_available() -> bool:
    return os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("setpriv"))


def _interpreter_for_nobody() -> str:
    """A Python that user ``nobody`` can execute (a venv under /root is not reachable)."""
    real = os.path.realpath(sys.executable)
    parts = Path(real).parents
    if all(os.stat(p).st_mode & 0o001 for p in parts if p != Path("/")):
        return real
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate):
            return candidate
    return real


def _limits(limits: SandboxLimits) -> dict[str, int]:
    """Applied by the runner itself before the code runs (no preexec_fn: forking a process that
    has JAX's or llama.cpp's threads running Python in the child can deadlock)."""
    return {"as": limits.memory_mb * 1024 * 1024, "nproc": limits.max_processes,
            "fsize": limits.max_file_mb * 1024 * 1024, "cpu": int(limits.timeout_s) + 2}


def _command(workdir: str, strong: bool) -> list[str]:
    if not strong:
        return [sys.executable, "-I", str(_RUNNER), workdir, "guarded"]
    python = _interpreter_for_nobody()
    inner = (
        "set -e; for d in /tmp /var/tmp /dev/shm; do [ -d $d ] && mount -t tmpfs -o size=64m tmpfs $d; done; "
        f"mkdir /tmp/work; chown {NOBODY}:{NOBODY} /tmp/work; cd /tmp/work; "
        f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --no-new-privs "
        f"{python} -I -S -c \"$ARCHSEARCH_RUNNER\" /tmp/work isolated"
    )
    return ["unshare", "--fork", "--pid", "--net", "--mount", "--kill-child", "sh", "-c", inner]


async def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Execute ``code``; it passes when it exits 0 (a failed assert or any exception fails it)."""
    limits = limits or SandboxLimits()
    strong = _strong_isolation_available()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with tempfile.TemporaryDirectory(prefix="archsearch-sbx-") as workdir:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        if strong:
            env["ARCHSEARCH_RUNNER"] = _RUNNER.read_text()
        proc = await asyncio.create_subprocess_exec(
            *_command(workdir, strong),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=workdir, env=env,
            start_new_session=True,
        )
        payload = json.dumps({"code": code, "limits": _limits(limits)}).encode()
        try:
            out, err = await asyncio.wait_for(proc.communicate(payload), limits.timeout_s)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return SandboxResult(False, "timeout", f"killed after {limits.timeout_s:g}s", loop.time() - start)
        finally:
            _kill_group(proc.pid)
    seconds = loop.time() - start
    stdout = out.decode("utf-8", "replace")[-OUTPUT_LIMIT:]
    detail = (err or out).decode("utf-8", "replace")[-OUTPUT_LIMIT:].strip()
    if proc.returncode == 0:
        return SandboxResult(True, "passed", "", seconds, stdout)
    if proc.returncode is not None and proc.returncode < 0:
        detail = f"killed by signal {signal.Signals(-proc.returncode).name}. {detail}".strip()
    last = detail.splitlines()[-1] if detail else f"exit code {proc.returncode}"
    return SandboxResult(False, "failed", last[:500], seconds, stdout)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_python_memo(code: str, limits: SandboxLimits | None, memo: dict | None) -> SandboxResult:
    """``run_python`` with results remembered by code: the search scores the same program for many
    pipelines (a candidate from a shared pool), and a deterministic program need not run twice."""
    if memo is None:
        return await run_python(code, limits)
    key = hashlib.sha256(code.encode()).hexdigest()
    if key not in memo:
        memo[key] = await run_python(code, limits)
    return memo[key]
