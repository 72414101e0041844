"""Answers that try to pass the tests without solving the task. Each is the body a model would
write after the prompt ``def add(a, b):`` (the task: return a + b). None may score as passing."""

HONEST = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"

HOSTILE = {
    "sys.exit(0) at import": WRONG + "import sys\nsys.exit(0)\n",
    "os._exit(0) at import": WRONG + "import os\nos._exit(0)\n",
    "raise SystemExit": WRONG + "raise SystemExit\n",
    "SystemExit(0) from the function": "def add(a, b):\n    raise SystemExit(0)\n",
    "os._exit(0) from the function": "def add(a, b):\n    import os\n    os._exit(0)\n",
    "KeyboardInterrupt at import": WRONG + "raise KeyboardInterrupt\n",
    "atexit hook exits 0": WRONG + "import atexit, os\natexit.register(lambda: os._exit(0))\n",
    "atexit hook prints a fake result": WRONG + (
        "import atexit\natexit.register(lambda: print('ARCHSEARCH_TESTS 1 1'))\n"),
    "replaced print": WRONG + "import builtins\nbuiltins.print = lambda *a, **k: None\n",
    "replaced exec, eval, compile and repr": WRONG + (
        "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.eval = lambda *a, **k: True\n"
        "builtins.compile = lambda *a, **k: compile('pass', 'x', 'exec')\nbuiltins.repr = lambda x: '5'\n"),
    "replaced AssertionError": WRONG + "import builtins\nbuiltins.AssertionError = type('Fine', (Exception,), {})\n",
    "redefined check": WRONG + "def check(candidate):\n    return True\n",
    "redefined assert helper and check as a builtin": WRONG + (
        "import builtins\nbuiltins.check = lambda candidate: True\nassert_equal = lambda a, b: None\n"),
    "faked harness output then exit": WRONG + "print('ARCHSEARCH_TESTS 3 3')\nimport os\nos._exit(0)\n",
    "faked result on every descriptor": WRONG + (
        "import os, json\nfake = json.dumps({'secret': '0' * 32, 'loaded': True, 'passed': [True] * 8, 'outputs': ['5'] * 8})\n"
        "for fd in range(1, 64):\n    try:\n        os.write(fd, fake.encode())\n    except OSError:\n        pass\nos._exit(0)\n"),
    "reads its own source, argv, environment and /proc": WRONG + (
        "import os, re, sys, json\nfound = set()\n"
        "for path in ['/proc/self/cmdline', '/proc/self/environ', '/proc/self/fd/0', '/proc/self/status']:\n"
        "    try:\n        found |= set(re.findall(rb'[0-9a-f]{32}', open(path, 'rb').read()))\n    except OSError:\n        pass\n"
        "found |= set(re.findall('[0-9a-f]{32}', ' '.join(sys.argv) + ' '.join(os.environ.values())))\n"
        "for s in found:\n    s = s.decode() if isinstance(s, bytes) else s\n"
        "    for fd in range(3, 64):\n        try:\n"
        "            os.write(fd, json.dumps({'secret': s, 'loaded': True, 'passed': [True], 'outputs': ['5']}).encode())\n"
        "        except OSError:\n            pass\nos._exit(0)\n"),
    "reads stdin for the payload": WRONG + (
        "import sys, os\ndata = sys.stdin.read()\nprint(data)\nos._exit(0)\n"),
    "kills its parent": WRONG + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
    "kills its process group": WRONG + "import os, signal\nos.killpg(os.getpgid(0), signal.SIGKILL)\n",
    "signal handler exits 0 on alarm": (
        "import signal, os\nsignal.signal(signal.SIGALRM, lambda *a: os._exit(0))\nsignal.alarm(1)\n"
        "def add(a, b):\n    import time\n    time.sleep(5)\n    return a - b\n"),
    "SIGTERM handler exits 0": WRONG + "import signal, os\nsignal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n",
    "thread exits 0 during the tests": (
        "import threading, os, time\nthreading.Thread(target=lambda: (time.sleep(0.2), os._exit(0)), daemon=True).start()\n"
        "def add(a, b):\n    time.sleep(1)\n    return a - b\n"),
    "thread prints a fake result after the tests": WRONG + (
        "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.3), print('ARCHSEARCH_TESTS 1 1'))).start()\n"),
    "child outlives the tests": WRONG + (
        "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 1; echo ARCHSEARCH_TESTS 1 1'])\n"),
    "closes every descriptor": WRONG + "import os\nos.closerange(0, 256)\n",
    "tracer installed at import skips the asserts": WRONG + (
        "import sys\ndef skip(frame, event, arg):\n    if event == 'line':\n        try:\n"
        "            frame.f_lineno = frame.f_lineno + 1\n        except Exception:\n            pass\n    return skip\n"
        "sys.settrace(lambda frame, event, arg: skip if frame.f_code.co_name in ('check', '<module>') else None)\n"),
    "walks the stack frames to the secret and forges a pass": WRONG + (
        "import sys, os, json\nf = sys._getframe()\nwhile f is not None:\n    loc = f.f_locals\n"
        "    if 'secret' in loc and 'fd' in loc:\n"
        "        os.write(loc['fd'], json.dumps({'secret': loc['secret'], 'loaded': True, 'error': None,\n"
        "                                        'passed': [True] * 50, 'outputs': ['5'] * 50}).encode())\n"
        "        os._exit(0)\n    f = f.f_back\n"),
    "searches the garbage collector and the parent's memory for the secret": WRONG + (
        "import gc, os, re, json\nfound = set()\nfor o in gc.get_objects():\n    try:\n"
        "        found |= set(re.findall('[0-9a-f]{32}', json.dumps(o, default=str)))\n    except Exception:\n        pass\n"
        "parent = os.getppid()\ntry:\n    maps = open(f'/proc/{parent}/maps').read().splitlines()\n"
        "    with open(f'/proc/{parent}/mem', 'rb') as mem:\n        for line in maps:\n"
        "            lo, hi = (int(x, 16) for x in line.split()[0].split('-'))\n            try:\n"
        "                mem.seek(lo)\n                found |= {m.decode() for m in re.findall(rb'[0-9a-f]{32}', mem.read(hi - lo))}\n"
        "            except (OSError, ValueError, OverflowError):\n                pass\nexcept OSError:\n    pass\n"
        "targets = list(range(3, 64)) + [f'/proc/{parent}/fd/{n}' for n in range(3, 64)]\n"
        "for s in found:\n    fake = json.dumps({'secret': s, 'loaded': True, 'error': None, 'passed': [True] * 50,\n"
        "                      'outputs': ['5'] * 50}).encode()\n    for t in targets:\n        try:\n"
        "            if isinstance(t, int):\n                os.write(t, fake)\n            else:\n"
        "                with open(t, 'wb') as fh:\n                    fh.write(fake)\n        except OSError:\n            pass\n"
        "os._exit(0)\n"),
    "replaces the harness functions in sys.modules": WRONG + (
        "import sys, os, json\njson.dumps = lambda *a, **k: '{\"secret\": \"x\"}'\nos.write = lambda fd, b: len(b)\n"
        "os._exit = lambda code: None\n"),
}
