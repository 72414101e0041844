"""How many provider answers a kill -9 loses: the crash test's search worker (fake models, eight
calls in flight) is started in a fresh folder and killed right after its k-th answer (k random in
1..30), the most exposed moment; an answer the fake provider logged but the call cache does not
hold is one a resumed search pays again.

    python benchmarks/kill_exposure.py [--kills 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

WORKER = Path(__file__).resolve().parent.parent / "tests" / "search_worker.py"


def lost_at(target: int) -> tuple[int, int]:
    """(answers logged, answers missing from the cache) after a kill right after answer ``target``."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        log = work / "paid.log"
        proc = subprocess.Popen([sys.executable, str(WORKER), str(work), "14"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if log.exists() and log.read_bytes().count(b"\n") >= target:
                break
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        logged = log.read_bytes().count(b"\n") if log.exists() else 0
        with closing(sqlite3.connect(work / "calls.sqlite")) as db:
            cached = db.execute("select count(*) from archsearch_llm_calls").fetchone()[0]
        return logged, logged - cached


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    lost = [lost_at(rng.randint(1, 30))[1] for _ in range(a.kills)]
    print(f"answers lost per kill: {lost}; mean {statistics.mean(lost):.2f}, max {max(lost)}, "
          f"kills that lost any {sum(1 for n in lost if n)}/{a.kills}")


if __name__ == "__main__":
    main()
