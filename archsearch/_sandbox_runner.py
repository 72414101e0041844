"""Runs inside the sandbox. Stdlib only, no archsearch.

Two processes. The judge (this process) first makes itself undumpable -- no process of the same user
can read its memory or descriptors -- and forks the candidate's process, which holds nothing yet.
Only then does the judge read one JSON line from stdin: the program, the tests, the probes, the
limits, the number of the result pipe and this run's secret. The candidate's process runs the
program and answers calls; the judge runs the tests and probes itself, with each name the program
defines standing in for a call to it (arguments and results cross as plain values: numbers,
strings, lists, tuples, dicts, sets, bytes). Then -- and only then -- the judge writes
{secret, results} to the result pipe and ends at once. The model-written code never runs in the
process that knows the secret or decides the verdict: it cannot exit early for it, patch the
asserts, fake a result or find the secret in memory. One byte, written just before the program
is sent, tells the parent the sandbox itself came up: without it, a run that did not finish is the
sandbox's failure, not the program's.
"""

import json
import os
import sys

MAX_MESSAGE = 16 * 1024 * 1024


def _guard(workdir):
    """Defence in depth for hosts without namespaces: no sockets, no writes outside workdir, no
    processes, no signals, no other process's /proc, no ctypes."""
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
            parts = path.split("/")
            if len(parts) > 2 and parts[1] == "proc" and parts[2].isdigit() and parts[2] != str(os.getpid()):
                raise PermissionError("another process's /proc is not readable in the sandbox")
        if event.startswith("ctypes.") or event in (
                "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.fork", "os.kill", "os.killpg",
                "signal.pthread_kill"):
            raise PermissionError(f"{event} is not allowed in the sandbox")

    sys.addaudithook(hook)


def _limit(limits):
    import resource

    for name, key in (("as", "RLIMIT_AS"), ("nproc", "RLIMIT_NPROC"), ("fsize", "RLIMIT_FSIZE"), ("cpu", "RLIMIT_CPU")):
        resource.setrlimit(getattr(resource, key), (limits[name], limits[name]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _undumpable():
    """PR_SET_DUMPABLE 0: /proc/<judge>/mem, /fd and ptrace are closed to processes of the same user."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _error(exc):
    return f"{type(exc).__name__}: {exc}"[:500]


def encode(value, depth=0):
    """A plain value as JSON; containers other than lists are tagged objects. Subclasses (an
    IntEnum, a namedtuple, an OrderedDict) cross as their base type."""
    if depth > 200:
        raise ValueError("the value is nested too deeply")
    if value is None:
        return None
    for kind in (bool, str, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, int):
        return int(value) if -10**300 < value < 10**300 else {"i": format(int(value), "x")}
    for kind, tag in ((list, None), (tuple, "t"), (frozenset, "f"), (set, "s")):
        if isinstance(value, kind):
            inner = [encode(v, depth + 1) for v in value]
            return inner if tag is None else {tag: inner}
    if isinstance(value, dict):
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, (bytes, bytearray)):
        return {"b": bytes(value).hex()}
    if isinstance(value, complex):
        return {"c": [value.real, value.imag]}
    raise TypeError(f"a {type(value).__name__} is not a plain value")


def decode(data):
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    [(tag, inner)] = data.items()
    if tag == "i":
        return int(inner, 16)
    if tag == "d":
        return {decode(k): decode(v) for k, v in inner}
    if tag == "b":
        return bytes.fromhex(inner)
    if tag == "c":
        return complex(*inner)
    return {"t": tuple, "f": frozenset, "s": set}[tag](decode(v) for v in inner)


class Channel:
    """Newline-delimited JSON over a pair of pipes."""

    def __init__(self, read_fd, write_fd):
        self.reader, self.write_fd = os.fdopen(read_fd, "rb"), write_fd

    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.write_fd, data):]

    def receive(self):
        line = self.reader.readline(MAX_MESSAGE + 1)
        if not line.endswith(b"\n"):
            raise RuntimeError("the candidate's process ended" if not line else "the candidate's answer is too long")
        return json.loads(line)


def candidate_process(channel, workdir):
    """The forked child: runs the program, then answers calls until the judge is done."""
    import types

    start = channel.receive()
    _limit(start["limits"])
    os.chdir(workdir)
    if start["guarded"]:
        _guard(workdir)
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(start["program"], "<candidate>", "exec"), namespace)
        report = {"loaded": True, "error": None}
    except BaseException as exc:  # SystemExit too: exiting early is a failure, not a pass
        report = {"loaded": False, "error": _error(exc)}
    callables, modules, values = [], {}, {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        elif callable(value):
            callables.append(name)
        else:
            try:
                values[name] = encode(value)
            except (TypeError, ValueError, RecursionError):
                pass
    channel.send({**report, "callables": callables, "modules": modules, "values": values})
    while True:
        call = channel.receive()
        try:
            result = namespace[call["name"]](*decode(call["args"]), **decode(call["kwargs"]))
            answer = {"value": encode(result)}
        except BaseException as exc:
            answer = {"raised": type(exc).__name__, "message": str(exc)[:300]}
        channel.send(answer)


class Raised(Exception):
    """An exception the candidate's code raised, by name, when the judge has no class of that name."""

    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name = name


def _proxy(channel, name):
    import builtins

    def call(*args, **kwargs):
        channel.send({"name": name, "args": encode(list(args)), "kwargs": encode(kwargs)})
        answer = channel.receive()
        if "value" in answer:
            return decode(answer["value"])
        name_raised, message = str(answer["raised"]), str(answer["message"])
        kind = getattr(builtins, name_raised, None)
        try:  # the builtin class of that name where there is one (some need more arguments)
            exc = kind(message) if isinstance(kind, type) and issubclass(kind, Exception) else None
        except Exception:
            exc = None
        raise exc or Raised(name_raised, message)

    call.__name__ = call.__qualname__ = name
    return call


def _stand_ins(namespace, channel, load):
    """The program's modules (imported here), plain values (copied) and callables (proxied)."""
    import importlib

    for name, module in load["modules"].items():
        try:
            namespace[str(name)] = importlib.import_module(str(module))
        except Exception:
            pass
    namespace.update({str(name): decode(v) for name, v in load["values"].items()})
    namespace.update({str(name): _proxy(channel, str(name)) for name in load["callables"]})


def judge(channel, load, tests, probes):
    """Tests and probes run here, against stand-ins for what the program defined."""
    namespace = {"__name__": "__main__"}
    try:  # the report comes from the candidate's process: anything malformed is a failed load
        error = None if load["loaded"] is True else str(load["error"])[:500]
        if error is None:
            _stand_ins(namespace, channel, load)
    except Exception as exc:
        error = f"the program's report was malformed ({_error(exc)})"
    loaded = error is None
    passed = []
    for test in tests:
        try:
            if not loaded:
                raise RuntimeError("the program did not load")
            exec(compile(test, "<test>", "exec"), namespace)
            passed.append(True)
        except BaseException as exc:
            passed.append(False)
            error = error or _error(exc)
    outputs = []
    for probe in probes:
        try:
            if not loaded:
                raise RuntimeError("the program did not load")
            outputs.append(repr(eval(compile(probe, "<probe>", "eval"), namespace))[:300])
        except BaseException as exc:
            outputs.append("!" + (exc.name if isinstance(exc, Raised) else type(exc).__name__))
    return loaded, error, passed, outputs


def main():
    workdir, mode = sys.argv[1], sys.argv[2]
    _undumpable()
    to_candidate, from_judge = os.pipe()
    to_judge, from_candidate = os.pipe()
    if os.fork() == 0:  # the candidate's process: it never sees the payload below
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        keep = sorted({0, 1, 2, to_candidate, from_candidate})
        for low, high in zip(keep, keep[1:] + [4096]):
            os.closerange(low + 1, high)
        try:
            candidate_process(Channel(to_candidate, from_candidate), workdir)
        finally:
            os._exit(0)
    os.close(to_candidate)
    os.close(from_candidate)
    channel = Channel(to_judge, from_judge)
    payload = json.loads(sys.stdin.readline())
    fd, secret = payload["result_fd"], payload["secret"]
    _limit(payload["limits"])
    os.chdir(workdir)
    os.write(fd, b"S")  # started: from here on, a run that does not finish is the program's doing
    try:
        channel.send({"program": payload["program"], "limits": payload["limits"], "guarded": mode == "guarded"})
        load = channel.receive()
    except (OSError, RuntimeError, ValueError) as exc:
        load = {"loaded": False, "error": _error(exc)}
    loaded, error, passed, outputs = judge(channel, load, payload["tests"], payload["probes"])
    result = json.dumps({"secret": secret, "loaded": loaded, "error": error, "passed": passed, "outputs": outputs})
    os.write(fd, result.encode()[:60_000])
    os._exit(0)


if __name__ == "__main__":
    main()
