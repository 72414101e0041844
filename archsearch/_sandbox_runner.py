"""Runs inside the sandbox: read {"code": ...} on stdin, execute it. Stdlib only, no archsearch."""

import json
import os
import sys


def _guard(workdir):
    """Defence in depth for hosts without namespaces: no sockets, no writes outside workdir."""
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
        if event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.fork"):
            raise PermissionError(f"{event} is not allowed in the sandbox")

    sys.addaudithook(hook)


def _limit(limits):
    import resource

    for name, key in (("as", "RLIMIT_AS"), ("nproc", "RLIMIT_NPROC"), ("fsize", "RLIMIT_FSIZE"), ("cpu", "RLIMIT_CPU")):
        resource.setrlimit(getattr(resource, key), (limits[name], limits[name]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main():
    workdir, mode = sys.argv[1], sys.argv[2]
    payload = json.loads(sys.stdin.read())
    code = payload["code"]
    _limit(payload["limits"])
    os.chdir(workdir)
    if mode == "guarded":
        _guard(workdir)
    namespace = {"__name__": "__main__"}
    exec(compile(code, "<candidate>", "exec"), namespace)  # noqa: S102 - this is the sandbox


if __name__ == "__main__":
    main()
