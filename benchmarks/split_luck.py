"""How much of a re-split's miss is the split's own luck? Reads a ``resplit.py`` results file.

Each re-split predicts the chosen pipeline's final score from the search split. If a split's final
questions are harder than its search questions, every pipeline scores lower on them -- greedy too,
whose score involves no model and no choice. This prints, per split, the final score minus the
predicted interval's midpoint beside greedy's final score minus its own search score, their means
(standard errors over splits) and correlation.

    python benchmarks/split_luck.py [--results results/humaneval-local-sampling-resplit.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from resplit import ROOT, outcomes, split_questions  # noqa: E402
from tabular import RESULTS  # noqa: E402

from archsearch.candidates import enumerate_space  # noqa: E402
from archsearch.experiment import Experiment  # noqa: E402
from archsearch.llm import CallCache  # noqa: E402
from archsearch.space import SearchSpace, spec_fingerprint  # noqa: E402
from archsearch.tasks import Task  # noqa: E402


def mean_se(x: np.ndarray) -> str:
    return f"{x.mean():+.1f} (s.e. {x.std(ddof=1) / np.sqrt(len(x)):.1f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(RESULTS / "humaneval-local-sampling-resplit.json"))
    p.add_argument("--space", default=str(ROOT / "spaces/sampling.yaml"), help="the space the results were run on")
    args = p.parse_args()
    result = json.loads(Path(args.results).read_text())
    exp = Experiment(ROOT / "experiments" / result["experiment"])
    task = Task(exp.path(exp.config.task))
    space = SearchSpace(args.space)
    if space.name != result["space"]:
        sys.exit(f"{args.results}: space: expected the results' space {result['space']!r}, but got {space.name!r} (--space)")
    specs = [s for _, s in enumerate_space(space, task)]
    correct = outcomes(task, specs, CallCache(task.cache_url), {}, f"{exp.dir.name}-{space.name}")["correct"]
    greedy = [spec_fingerprint(s) for s in specs].index(spec_fingerprint(space.baseline(task)[1]))
    miss, luck = [], []
    for row in result["rows"]:
        search_q, _, final_q = split_questions(np.random.default_rng(row["seed"]), correct.shape[1], tuple(result["sizes"]))
        miss.append((row["a"] - (row["predicted_low"] + row["predicted_high"]) / 2) * 100)
        luck.append((correct[greedy, final_q].mean() - correct[greedy, search_q].mean()) * 100)
        print(f"split {row['seed']:2d}: final - predicted midpoint {miss[-1]:+6.1f}; greedy final - greedy search "
              f"{luck[-1]:+6.1f}{'' if row['covered'] else '   (outside the interval)'}")
    miss, luck = np.array(miss), np.array(luck)
    print(f"{len(miss)} splits: final - midpoint {mean_se(miss)} points; greedy final - search {mean_se(luck)}; "
          f"correlation {np.corrcoef(miss, luck)[0, 1]:.2f}; final - midpoint - greedy's luck {mean_se(miss - luck)}")


if __name__ == "__main__":
    main()
