"""The report's posterior on new questions, timed: ``Evidence.on_new`` as ``decide.posterior_options``
runs it (1,024 stratified questions, every posterior draw) for six pipelines the default HumanEval
search put on its front (n=8 until accepted with tests and a vote by agreement, greedy then samples
until accepted, ...), fitted on the shipped pool's search split. Prints the seconds and a digest of
every simulated figure, so that a speed-up can show it changes nothing.

    python benchmarks/report_posterior.py [--workers N ...] [--noise]

``--workers``: each figure in the list, timed in turn (``none``: the single stream; a number: that
many threads, each block of draws from its own stream -- one digest for every number).
``--noise``: the simulation noise of questions drawn at random and stratified (``population``), by
their number, over four seeds: seconds, the noise of each draw's accuracy (points, per pipeline),
how far the reported mean and 90% interval ends move between seeds, the intervals' mean width and
how far P(beats the last pipeline) moves; then a 41-question split's predicted interval ends (``Evidence.on_split``)
with one and eight splits per posterior draw.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archsearch.bayes.evidence import Evidence  # noqa: E402
from archsearch.bayes.fit import use_compile_cache  # noqa: E402
from archsearch.bayes.plan import plan_of  # noqa: E402
from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.llm import CallCache  # noqa: E402
from archsearch.optimize.cli import compile_cache_folder  # noqa: E402
from archsearch.optimize.decide import NEW_QUESTIONS  # noqa: E402
from archsearch.sandbox import RecordedRuns  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402
from archsearch.tasks import Task  # noqa: E402

FRONT = ("595af99160b9b8aa", "ac3fb6bd331a6c65", "ef41c574a4a3c1f4", "766090ba5231c880", "57046491401a267d",
         "bb21d7541a0bbe05")   # trials 2, 3, 4, 5, 14, 23 of a default search (spaces/sampling-prompts.yaml)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", nargs="+", default=["none"], help="none, or threads (e.g. none 1 2)")
    parser.add_argument("--noise", action="store_true", help="the simulation noise by question count, drawn and stratified")
    args = parser.parse_args()
    use_compile_cache(compile_cache_folder(os.environ))
    experiment = ROOT / "experiments/humaneval-local"
    task = Task(experiment / "task.yaml")
    rows = enumerate_space(SearchSpace(ROOT / "spaces/sampling-prompts.yaml"), task)
    plans = [p for p in (plan_of(spec) for _, spec in rows) if p is not None]
    front = {spec_fingerprint(spec): plan_of(spec) for _, spec in rows if spec_fingerprint(spec) in FRONT}
    assert len(front) == len(FRONT), f"the space no longer holds every front pipeline: {sorted(front)}"
    cache = CallCache(f"sqlite:///{experiment / 'calls.sqlite'}")
    evidence = Evidence(task, task.split("search"), cache, RecordedRuns(cache), plans)   # the shipped sandbox runs
    start = time.perf_counter()
    evidence.refresh()
    fit = time.perf_counter() - start
    print(f"fit {fit:.1f} s")
    plans = [front[f] for f in FRONT]
    if args.noise:
        return noise(evidence, plans)
    for workers in args.workers:
        start = time.perf_counter()
        sim = evidence.on_new(plans, NEW_QUESTIONS, np.random.default_rng(0),
                              workers=None if workers == "none" else int(workers), population=True)
        seconds = time.perf_counter() - start
        digest = hashlib.sha256()
        for name in ("accuracy", "calls", "tokens", "usd", "latency_p50", "latency_p95", "bought"):
            digest.update(np.ascontiguousarray(getattr(sim, name)).tobytes())
        print(f"workers {workers}: on_new {seconds:.2f} s; digest {digest.hexdigest()[:16]}; "
              f"mean accuracy {sim.accuracy.mean():.4f}", flush=True)


def noise(evidence: Evidence, plans: list, seeds: int = 4) -> None:
    for questions, population in ((2048, False), (1024, False), (2048, True), (1024, True), (512, True)):
        start = time.perf_counter()
        runs = np.stack([evidence.on_new(plans, questions, np.random.default_rng(100 + s), workers=2,
                                         population=population).accuracy for s in range(seeds)])   # [seeds, draws, P]
        seconds = (time.perf_counter() - start) / seeds
        per_draw = 100 * np.sqrt(np.var(runs, axis=0, ddof=1).mean(axis=0))
        low, high = (100 * np.percentile(runs, q, axis=1) for q in (5, 95))
        beats = (runs[:, :, :-1] > runs[:, :, -1:]).mean(axis=1)
        print(f"{questions:5d} {'stratified' if population else 'drawn':10s} {seconds:5.2f} s/run; noise per draw "
              f"{' '.join(f'{x:.2f}' for x in per_draw)} pts; between seeds (largest over pipelines): mean "
              f"{100 * runs.mean(axis=1).std(axis=0).max():.2f}, 5% end {low.std(axis=0).max():.2f}, 95% end "
              f"{high.std(axis=0).max():.2f} pts, P(beats) {beats.std(axis=0).max():.3f}; 90% width {(high - low).mean():.2f} pts",
              flush=True)
    for replicates in (1, 8):   # a 41-question final split's predicted 90% interval, in whole questions
        ends = [[np.percentile(evidence.on_split(plans[k], 41, np.random.default_rng(100 + s), replicates), [5, 95]) * 41
                 for s in range(seeds + 2)] for k in range(3)]
        shown = " | ".join(" ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in pipeline) for pipeline in ends)
        print(f"final split of 41, {replicates} split(s) per draw: interval ends over {seeds + 2} seeds, first three pipelines: "
              f"{shown}", flush=True)


if __name__ == "__main__":
    main()
