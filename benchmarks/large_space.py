"""A space far too large to list (benchmarks/spaces/synthetic-large.yaml: about 5 x 10^10 pipelines),
searched with the fake LLM: how long each surrogate proposal takes, and the paid calls each sampler
spends before its best pipeline comes within ``--margin`` of the best any run found.

    python benchmarks/large_space.py [--seeds 5] [--trials 60] [--samplers surrogate,tpe]

Six fake models answer "What is A + B?" right with their own probability (NoisyArithmetic); a judge
is right with 0.9 / 0.2 rates; the fake ranks at random. The objective is the default one (accuracy,
calls per question, latency). Calls are what the search paid, counted when its front first reaches the
target; a run that never reaches it counts all its calls (censored; the table says how many reached).
Fits keep their compiled code where ``archsearch optimize`` keeps it (``ARCHSEARCH_COMPILE_CACHE``, else
~/.cache/archsearch/jax); proposal times are reported without and with the proposals that compiled a
shape (the first search on a machine compiles; later ones read the compiled code from disk, once per
shape and process: those proposals are counted with the compiling ones). Proposals are also
counted by what made them: a fit and its scores ("model"), a probe of a generator no trial has
sampled yet, or TPE's turn; the model-based ones' times are reported apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import os  # noqa: E402

import jax  # noqa: E402

from archsearch.bayes.fit import use_compile_cache  # noqa: E402
from archsearch.llm import CallCache, LLMClient  # noqa: E402
from archsearch.llm.budget import Budget  # noqa: E402
from archsearch.objectives import load_objective  # noqa: E402
from archsearch.optimize.cli import compile_cache_folder  # noqa: E402
from archsearch.optimize.search import Search, SearchSettings  # noqa: E402
from archsearch.space import SearchSpace  # noqa: E402
from archsearch.tasks import Task  # noqa: E402
from archsearch.testing import FakeLLM  # noqa: E402
from archsearch.testing.arithmetic import NoisyArithmetic  # noqa: E402

ACCURACY = {f"fake/m{i}": p for i, p in enumerate((0.05, 0.1, 0.15, 0.2, 0.3, 0.4), 1)}
RESULTS = ROOT / "benchmarks" / "results"
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"   # jax._src.dispatch.BACKEND_COMPILE_EVENT
CACHE_READ = "/jax/compilation_cache/cache_retrieval_time_sec"   # compiled code read from JAX's cache on disk


def run(sampler: str, seed: int, trials: int) -> dict:
    folder = Path(tempfile.mkdtemp())
    client = LLMClient(FakeLLM(answers=NoisyArithmetic(ACCURACY)), CallCache(f"sqlite:///{folder / 'calls.sqlite'}"))
    settings = SearchSettings(task=Task(ROOT / "tests/fixtures/toy/task.yaml"),
                              space=SearchSpace(ROOT / "benchmarks/spaces/synthetic-large.yaml"),
                              objective=load_objective(ROOT / "objectives/default.yaml"), trials=trials,
                              storage=":memory:", study_name="large", out_dir=folder, sampler=sampler, seed=seed,
                              budget=Budget())
    search = Search(settings, client)
    history: list[tuple[float, int]] = []      # (best accuracy so far, paid calls so far) after each trial
    proposals: list[float] = []
    compiled: list[bool] = []       # whether XLA compiled, or read compiled code, for more than 0.5 s in the proposal
    kinds: list[str] = []           # what made each proposal: "model" (a fit and its scores), "probe", or "tpe"
    compile_seconds: list[float] = []

    def on_compile(event, seconds, **_) -> None:
        if event in (BACKEND_COMPILE, CACHE_READ):
            compile_seconds.append(seconds)
    jax.monitoring.register_event_duration_secs_listener(on_compile)
    start = time.perf_counter()

    def progress(info) -> None:
        best = max((t.values[0] for t in search.front()), default=0.0)
        history.append((best, client.stats.calls))

    search.on_progress = progress
    if sampler == "surrogate":
        original = Search._surrogate_sampler

        def timed_sampler(self):
            built = original(self)
            before = built.before_trial

            def before_trial(study, trial):
                t, compiling, logged = time.perf_counter(), sum(compile_seconds), len(built.log)
                before(study, trial)
                compiled.append(sum(compile_seconds) - compiling > 0.5)
                proposals.append(time.perf_counter() - t)
                kinds.append("tpe" if len(built.log) == logged else "probe" if "probe" in built.log[-1] else "model")
            built.before_trial = before_trial
            return built
        search._surrogate_sampler = timed_sampler.__get__(search)
    search.run()
    jax.monitoring.unregister_event_duration_listener(on_compile)
    return {"history": history, "proposal_seconds": proposals, "compiled": compiled, "kinds": kinds,
            "seconds": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--samplers", default="surrogate,tpe")
    p.add_argument("--margin", type=float, default=0.05)
    p.add_argument("--out", default="large-space.json", help="results file name under benchmarks/results/")
    args = p.parse_args()
    use_compile_cache(compile_cache_folder(os.environ))
    runs = {name: [run(name, seed, args.trials) for seed in range(args.seeds)] for name in args.samplers.split(",")}
    best = max(h[0] for rs in runs.values() for r in rs for h in r["history"])
    target = best - args.margin
    result = {"best": best, "target": target, "trials": args.trials, "seeds": args.seeds}
    for name, rs in runs.items():
        calls, reached = [], 0
        for r in rs:
            hit = next((c for a, c in r["history"] if a >= target - 1e-9), None)
            reached += hit is not None
            calls.append(hit if hit is not None else r["history"][-1][1])
        proposals = [s for r in rs for s, new in zip(r["proposal_seconds"], r["compiled"]) if not new]
        compiling = [s for r in rs for s, new in zip(r["proposal_seconds"], r["compiled"]) if new]
        result[name] = {"median_calls": statistics.median(calls), "calls": calls, "reached": reached,
                        "median_seconds": statistics.median(r["seconds"] for r in rs)}
        if proposals:
            result[name] |= {"proposal_seconds_median": statistics.median(proposals),
                             "proposal_seconds_p90": float(sorted(proposals)[int(0.9 * (len(proposals) - 1))]),
                             "proposal_seconds_max": max(proposals), "proposals": len(proposals),
                             "over_2s": sum(s > 2.0 for s in proposals),
                             "over_2s_at": [{"seed": seed, "proposal": k, "seconds": round(s, 2)}
                                            for seed, r in enumerate(rs) for k, (s, new) in
                                            enumerate(zip(r["proposal_seconds"], r["compiled"])) if s > 2.0 and not new],
                             "compiling_proposal_seconds": [round(s, 2) for s in compiling]}
            model = [s for r in rs for s, new, kind in zip(r["proposal_seconds"], r["compiled"], r["kinds"])
                     if kind == "model" and not new]
            result[name] |= {"proposals_by_kind": {k: sum(kind == k for r in rs for kind in r["kinds"])
                                                   for k in ("model", "probe", "tpe")},
                             "model_proposal_seconds_median": statistics.median(model),
                             "model_proposal_seconds_p90": float(sorted(model)[int(0.9 * (len(model) - 1))]),
                             "model_proposal_seconds_max": max(model)}
        print(name, result[name], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
