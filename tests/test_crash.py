"""kill -9 at random moments, then rerun: no completed trial lost, cache readable, no call paid twice."""

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna

from archsearch.llm import CallCache

WORKER = Path(__file__).parent / "search_worker.py"
TRIALS = 14


def _start(work: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(work), str(TRIALS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _completed(work: Path) -> dict[int, tuple]:
    study = optuna.load_study(study_name="crash", storage=f"sqlite:///{work / 'study.sqlite'}")
    return {t.number: tuple(t.values) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}


def test_kill_minus_nine_then_resume(tmp_path):
    rng = random.Random(3)
    seen: dict[int, tuple] = {}
    for _ in range(4):
        proc = _start(tmp_path)
        time.sleep(rng.uniform(1.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (tmp_path / "study.sqlite").exists():
            now = _completed(tmp_path)
            assert all(now.get(n) == v for n, v in seen.items()), "a completed trial was lost or changed"
            seen = now
        assert len(CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")) >= 0  # readable after every kill
    proc = _start(tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    final = _completed(tmp_path)
    assert all(final.get(n) == v for n, v in seen.items())
    study = optuna.load_study(study_name="crash", storage=f"sqlite:///{tmp_path / 'study.sqlite'}")
    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    assert len(finished) == TRIALS
    paid = Counter((tmp_path / "paid.log").read_text().split())
    cached = len(CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}"))
    repeated = sum(c - 1 for c in paid.values())
    print(f"kill -9 x4: completed trials kept {len(seen)}, paid calls {sum(paid.values())}, repeated {repeated}")
    assert repeated == 0  # only the microseconds between a reply and its cache write are exposed
    assert cached == len(paid)
