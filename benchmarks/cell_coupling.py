"""Does the model know that one model's greedy answer and its sampled answers fail together?

A posterior predictive check of the cell Beta (bayes/MODEL.md): fitted on every question of the
experiment, the model predicts, for a new question, whether the greedy answer is right given how many
of n samples at temperature 0.8 are right. In the model the two cells are independent given the
question's difficulty; since ``archsearch/bayes/coupling.py`` the greedy cell is one answer drawn on its
samples with a learnt coupling c. Prints P(greedy right | k of n samples right) measured, predicted
with the cells independent (c = 0, the model before), with the learnt c, and with c fixed (``--rho``).

    python benchmarks/cell_coupling.py [--experiment experiments/humaneval-local] [--space spaces/sampling.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from resplit import ROOT  # noqa: E402

from archsearch.bayes.evidence import Evidence  # noqa: E402
from archsearch.bayes.plan import plan_of  # noqa: E402
from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.experiment import Experiment  # noqa: E402
from archsearch.llm import CallCache  # noqa: E402
from archsearch.space import SearchSpace  # noqa: E402
from archsearch.tasks import Task  # noqa: E402


def bins(n: int) -> list[tuple[int, int]]:
    """Ranges of k (right samples of n): none, the lower half, the upper half, all."""
    half = max(1, n // 2)
    return [(0, 0), (1, half), (half + 1, n - 1), (n, n)] if n > 2 else [(k, k) for k in range(n + 1)]


def table(greedy_right: np.ndarray, k: np.ndarray, n: int) -> list[str]:
    out = []
    for lo, hi in bins(n):
        sel = (k >= lo) & (k <= hi)
        out.append(f"{greedy_right[sel].mean():.2f} ({int(sel.sum())})" if sel.any() else "   -   ")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-local"))
    p.add_argument("--space", default=str(ROOT / "spaces/sampling.yaml"))
    p.add_argument("--rho", type=float, nargs="*", default=[0.9], help="couplings to show besides the learnt one")
    p.add_argument("--new-questions", type=int, default=2000)
    args = p.parse_args()
    exp = Experiment(args.experiment)
    task = Task(exp.path(exp.config.task))
    space = SearchSpace(args.space)
    plans = [plan for plan in (plan_of(s) for _, s in enumerate_space(space, task)) if plan is not None]
    evidence = Evidence(task, task.split("all"), CallCache(task.cache_url), {}, plans)
    post = evidence.refresh()
    a, keys = evidence.arrays, list(evidence.ctx.generators)
    temperature = np.array([json.loads(k)[1].get("temperature") for k in keys])
    greedy = next(g for g in range(len(keys)) if temperature[g] == 0.0 and a.m[g].max() == 1)
    sampled = int(np.argmax(np.where(temperature > 0, a.m.sum(axis=1), -1)))
    n = int(np.median(a.m[sampled][a.m[sampled] > 0]))
    questions = np.flatnonzero((a.m[greedy] == 1) & (a.m[sampled] >= n))
    k_real = np.array([a.correct[q, a.sample[sampled, q, :n]].sum() for q in questions])
    g_real = a.correct[questions, a.sample[greedy, questions, 0]].astype(float)

    rng = np.random.default_rng(0)
    D, Q = post.draws, args.new_questions
    fresh = dataclasses.replace(post, b=rng.standard_normal((D, Q)) * post.sigma_b[:, None],
                                cell_n=np.zeros((len(keys), Q)), cell_y=np.zeros((len(keys), Q)))
    print(f"{exp.dir.name} / {space.name}: {len(questions)} questions with greedy and {n} samples at "
          f"T={temperature[sampled]:g}; columns: k of {n} right -> P(greedy right) (questions or draws in the bin)")
    print(f"{'':40s}" + "  ".join(f"k {lo}-{hi}" if lo != hi else f"k {lo}" for lo, hi in bins(n)))
    print(f"{'measured':40s}" + "  ".join(table(g_real, k_real, n)))
    learnt = post.coupling.c
    rows = [("cells independent (before the coupling)", np.zeros(D)), (f"the model: coupling learnt, c {learnt.mean():.2f}", learnt)]
    rows += [(f"coupling fixed at {c:g}", np.full(D, c)) for c in args.rho]
    for name, c in rows:
        p = dataclasses.replace(fresh, coupling=dataclasses.replace(post.coupling, c=c)).cell_p(rng)
        right = rng.random(p[:, greedy].shape) < p[:, greedy]
        print(f"{name:40s}" + "  ".join(table(right.ravel(), rng.binomial(n, p[:, sampled]).ravel(), n)))

if __name__ == "__main__":
    main()
