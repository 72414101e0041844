"""Runs inside the sandbox. Stdlib only, no archsearch.

Reads one JSON line from stdin: the program, the tests, the probes, the limits, the number of the
result pipe and this run's secret. Runs the program, then each test, then each probe, in one
namespace; then -- and only then -- writes {secret, results} to the result pipe and ends the
process at once (no atexit hooks, no lingering threads). The parent counts a run only when the
secret comes back, so a program that exits early (sys.exit, os._exit, SystemExit, a signal), hooks
the interpreter's exit or prints a fake result line never scores: it cannot know the secret, which
is in no file, argument or environment variable it can read. One byte, written just before the
program starts, tells the parent the sandbox itself came up: without it, a run that did not finish
is the sandbox's failure, not the program's.
"""

import json
import os
import sys


def _guard(workdir):
    """Defence in depth for hosts without namespaces: no sockets, no writes outside workdir,
    no processes, no signals to other processes."""
    root = os.path.realpath(workdir)

    def hook(event, args):
        if event.startswith("socket."):
            raise PermissionError("network access is not allowed in the sandbox")
        if event == "open" and len(args) >= 2 and isinstance(args[0], (str, bytes)):
            mode = args[1] if isinstance(args[1], str) else ""
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            path = os.path.realpath(os.fsdecode(args[0]))
            if writing and not (path == root or path.startswith(root + os.sep)):
                raise PermissionError(f"writing outside the sandbox directory: {path}")
        if event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.fork", "os.kill",
                     "os.killpg", "signal.pthread_kill"):
            raise PermissionError(f"{event} is not allowed in the sandbox")

    sys.addaudithook(hook)


def _limit(limits):
    import resource

    for name, key in (("as", "RLIMIT_AS"), ("nproc", "RLIMIT_NPROC"), ("fsize", "RLIMIT_FSIZE"), ("cpu", "RLIMIT_CPU")):
        resource.setrlimit(getattr(resource, key), (limits[name], limits[name]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _error(exc):
    return f"{type(exc).__name__}: {exc}"[:500]


def _run(program, tests, probes, _exec=exec, _eval=eval, _compile=compile, _repr=repr, _type=type):
    """The candidate runs inside this frame's callees; everything used after it is bound here first."""
    namespace = {"__name__": "__main__"}
    error = None
    try:
        _exec(_compile(program, "<candidate>", "exec"), namespace)
    except BaseException as exc:  # SystemExit too: exiting early is a failure, not a pass
        error = _error(exc)
    loaded = error is None
    passed = []
    for test in tests:
        try:
            if not loaded:
                raise RuntimeError("the program did not load")
            _exec(_compile(test, "<test>", "exec"), namespace)
            passed.append(True)
        except BaseException as exc:
            passed.append(False)
            error = error or _error(exc)
    outputs = []
    for probe in probes:
        try:
            if not loaded:
                raise RuntimeError("the program did not load")
            outputs.append(_repr(_eval(_compile(probe, "<probe>", "eval"), namespace))[:300])
        except BaseException as exc:
            outputs.append("!" + _type(exc).__name__)
    return loaded, error, passed, outputs


def main():
    workdir, mode = sys.argv[1], sys.argv[2]
    payload = json.loads(sys.stdin.readline())
    write, dumps, finish = os.write, json.dumps, os._exit
    fd, secret = payload["result_fd"], payload["secret"]
    _limit(payload["limits"])
    os.chdir(workdir)
    if mode == "guarded":
        _guard(workdir)
    write(fd, b"S")  # started: from here on, a run that does not finish is the program's doing
    loaded, error, passed, outputs = _run(payload["program"], payload["tests"], payload["probes"])
    result = dumps({"secret": secret, "loaded": loaded, "error": error, "passed": passed, "outputs": outputs}).encode()
    write(fd, result[:60_000])
    finish(0)


if __name__ == "__main__":
    main()
