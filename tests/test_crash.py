"""kill -9 at random moments, then rerun: no completed trial lost, cache readable, no call paid twice."""

import json
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


def _start(work: Path, *extra: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(work), str(TRIALS), *extra],
                            stdout=stdout, stderr=subprocess.PIPE)


def _completed(work: Path) -> dict[int, tuple]:
    try:
        study = optuna.load_study(study_name="crash", storage=f"sqlite:///{work / 'study.sqlite'}")
    except KeyError:   # killed after the storage file was made, before the study was
        return {}
    return {t.number: tuple(t.values) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}


def _answers(work: Path) -> int:
    log = work / "paid.log"
    return log.read_bytes().count(b"\n") if log.exists() else 0


def _kill_after_answers(proc: subprocess.Popen, work: Path, target: int, deadline_s: float = 60.0) -> None:
    """kill -9 right after the provider's ``target``-th answer: the moment an answer is most exposed
    (received, maybe not yet in the cache) -- or at the deadline."""
    deadline = time.time() + deadline_s
    while time.time() < deadline and proc.poll() is None and _answers(work) < target:
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)


def test_kill_minus_nine_then_resume(tmp_path):
    """Killed four times, each right after a random answer (with eight calls in flight), and resumed:
    each kill costs at most the one answer being written when it came (the provider answered, the
    process died before the write); answers that arrived while another was written are not lost.
    Without hedging: a hedge pays one call twice on purpose, and these 10-ms calls are hedged whenever
    the process holds up its event loop (CI: 5 repeats; locally, one run in eight: 7 repeats, 3 of them
    hedges). Kills during hedged calls are the next test."""
    rng = random.Random(3)
    seen: dict[int, tuple] = {}
    for _ in range(4):
        proc = _start(tmp_path, "--no-hedging")
        _kill_after_answers(proc, tmp_path, _answers(tmp_path) + rng.randint(1, 24))
        proc.wait()
        if (tmp_path / "study.sqlite").exists():
            now = _completed(tmp_path)
            assert all(now.get(n) == v for n, v in seen.items()), "a completed trial was lost or changed"
            seen = now
        assert len(CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}")) >= 0  # readable after every kill
    proc = _start(tmp_path, "--no-hedging", stdout=subprocess.PIPE)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out.decode().strip().splitlines()[-1])["hedges"] == 0
    final = _completed(tmp_path)
    assert all(final.get(n) == v for n, v in seen.items())
    study = optuna.load_study(study_name="crash", storage=f"sqlite:///{tmp_path / 'study.sqlite'}")
    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    assert len(finished) == TRIALS
    paid = Counter((tmp_path / "paid.log").read_text().split())
    cached = len(CallCache(f"sqlite:///{tmp_path / 'calls.sqlite'}"))
    repeated = sum(c - 1 for c in paid.values())
    never_cached = len(paid) - cached   # lost at a kill, and the resumed search (new proposals) never asked again
    print(f"kill -9 x4: completed trials kept {len(seen)}, paid calls {sum(paid.values())}, repeated {repeated}, "
          f"paid but never cached {never_cached}")
    assert never_cached >= 0, "the cache holds answers nobody paid for"
    # Each kill loses at most the answer being written when it came (before: every answer in flight, up to 8).
    # A lost answer is either paid again or, when the resumed search proposes other pipelines, never asked for.
    assert repeated + never_cached <= 4


def test_kill_minus_nine_during_hedged_calls_then_resume(tmp_path):
    """One request in twelve is slow, so calls get hedged (two requests for one call); killed at
    random moments and resumed, no call whose answer the cache holds is ever requested again."""
    rng = random.Random(5)
    for _ in range(3):
        proc = _start(tmp_path, "--jitter")
        time.sleep(rng.uniform(2.0, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = _start(tmp_path, "--jitter", stdout=subprocess.PIPE)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    log = (tmp_path / "paid.log").read_text().split()
    assert "REPAID" not in log
    study = optuna.load_study(study_name="crash", storage=f"sqlite:///{tmp_path / 'study.sqlite'}")
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))) == TRIALS
    hedges = json.loads(out.decode().strip().splitlines()[-1])["hedges"]
    print(f"hedged calls in the last run: {hedges}")
    assert hedges > 0
