"""What the recorded pool says about Qwen's model-written tests as a verifier, measured directly.

For every HumanEval problem: the tests Qwen wrote (the recorded 2 calls x 5 asserts of
experiments/humaneval-local/pools/qwen-tests.yaml, parsed by the test layer's own strict parser)
run against the greedy answer and the 8 recorded samples at T=0.8, each judged by the hidden tests
(the truth). Per generator (greedy, T=0.8 samples), over the problems where the writer's tests
parsed:

- TPR: share of correct programs that pass every written test; FPR: share of wrong programs that do;
  and the same with the layer's rule over these 9 candidates (tests no candidate passes set aside);
- wrong tests: share of written tests that fail a correct program of the same problem (its expected
  value is off), over the problems with at least one correct program, and the share of such problems
  with at least one wrong test;
- how many wrong tests the test layer's suspected-wrong-test rule catches (a written test no
  candidate passes is set aside; one a wrong program passes still fails the right ones).

Beside them, the surrogate's own rows for the same tests (``--surrogate``): fitted on the search
split with every call of spaces/sampling-model-tests.yaml known, the verifier table's TPR and FPR
with 90% intervals per generator, and the direct rates counted as the model counts them (a
problem's right programs once, passing when most of them pass, with the suspected-wrong rule).

No new call; the sandbox runs are those of the test layer (memoised within the run).

    python benchmarks/model_test_rates.py [--experiment experiments/humaneval-local] [--surrogate]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tabular import RESULTS, replaying  # noqa: E402

from archsearch.pipeline import build_techniques  # noqa: E402
from archsearch.programs import check_visible, split_tests  # noqa: E402
from archsearch.sandbox import SandboxLimits  # noqa: E402
from archsearch.spec import load_spec  # noqa: E402
from archsearch.stats import wilson_interval  # noqa: E402
from archsearch.techniques.base import LayerContext, LayerTrace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _rate(hits: int, total: int) -> dict:
    low, high = wilson_interval(hits, total) if total else (float("nan"), float("nan"))
    return {"rate": hits / total if total else float("nan"), "low": low, "high": high, "n": total}


async def measure(task, client, experiment: Path) -> list[dict]:
    def layer(pool: str, index: int):
        spec = load_spec(experiment / pool)
        technique = build_techniques(spec)[index]
        return technique, spec.models

    (tests_by, models), greedy, sampled = layer("pools/qwen-tests.yaml", -1), layer("baseline.yaml", 0)[0], \
        layer("pools/qwen-t08-direct.yaml", 0)[0]
    memo, slots, limits = {}, asyncio.Semaphore(4), SandboxLimits()

    def ctx(kind: str) -> LayerContext:
        return LayerContext(client, models, task.extractor, LayerTrace(0, kind), slots, label=kind, sandbox_memo=memo)

    async def one(record) -> dict:
        question = task.question(record)
        tests, dropped = await tests_by.written_tests(ctx("test"), question)
        rows = []
        for name, technique in (("greedy", greedy), ("T=0.8", sampled)):
            for i in range(technique.params.n):
                text = (await technique.sample(ctx("generate"), question, i)).text
                answer = task.extractor(text)
                correct = bool(answer) and await task.scorer.score(answer, record, None, memo) == 1.0
                passed = None
                if tests and answer:
                    async with slots:
                        check = await check_visible(task.scorer.program, record.fields, answer, "\n".join(tests),
                                                    limits, memo)
                    n = len(split_tests("\n".join(tests))[1])
                    passed = list(check.run.passed) if check and len(check.run.passed) == n else [False] * n
                elif tests:
                    passed = [False] * len(tests)
                rows.append({"generator": name, "correct": correct, "passed": passed})
        return {"id": record.id, "tests": len(tests), "dropped": dropped, "candidates": rows}

    return list(await asyncio.gather(*(one(r) for r in task.split(None))))


def summarise(problems: list[dict]) -> dict:
    out: dict = {"problems": len(problems), "with_written_tests": sum(p["tests"] > 0 for p in problems),
                 "tests_written": sum(p["tests"] for p in problems), "lines_dropped": sum(p["dropped"] for p in problems)}
    for gen in ("greedy", "T=0.8", "all"):
        for rule in (False, True):
            tp = pos = fp = neg = 0
            for p in problems:
                # with the rule: only the tests some candidate (of the 9) passes are counted, as the layer does
                counted = [t for t in range(p["tests"]) if not rule or any(c["passed"][t] for c in p["candidates"])]
                for c in p["candidates"]:
                    if p["tests"] == 0 or (gen != "all" and c["generator"] != gen):
                        continue
                    accepted = all(c["passed"][t] for t in counted)
                    if c["correct"]:
                        pos, tp = pos + 1, tp + accepted
                    else:
                        neg, fp = neg + 1, fp + accepted
            name = f"{gen}, suspected wrong tests set aside" if rule else f"{gen}, every written test"
            out[name] = {"TPR": _rate(tp, pos), "FPR": _rate(fp, neg)}
    wrong = judged = with_wrong = problems_judged = caught = aside_unknown = 0
    for p in problems:
        if p["tests"] == 0:
            continue
        right_programs = [c["passed"] for c in p["candidates"] if c["correct"]]
        nobody = {t for t in range(p["tests"]) if not any(c["passed"][t] for c in p["candidates"])}
        if not right_programs:
            aside_unknown += len(nobody)
            continue
        bad = {t for t in range(p["tests"]) if not all(row[t] for row in right_programs)}
        problems_judged += 1
        wrong, judged, with_wrong, caught = wrong + len(bad), judged + p["tests"], with_wrong + bool(bad), caught + len(bad & nobody)
    out["wrong_tests"] = _rate(wrong, judged)
    out["problems_with_a_wrong_test"] = _rate(with_wrong, problems_judged)
    # a wrong test no candidate passes is set aside by the layer; one a wrong program passes still rejects the right ones
    out["wrong_tests_set_aside_by_the_rule"] = _rate(caught, wrong)
    out["set_aside_where_no_candidate_is_right"] = aside_unknown
    return out


def counted_once(problems: list[dict], gen: str, alone: bool = False) -> dict:
    """TPR and FPR as the surrogate's data count them: a problem's right programs of ``gen`` once
    (``alone``: each program judged by itself, so every test counts -- the one-at-a-time row)."""
    tp = pos = fp = neg = 0
    for p in problems:
        if p["tests"] == 0:
            continue
        counted = [t for t in range(p["tests"]) if alone or any(c["passed"][t] for c in p["candidates"])]
        mine = [(c["correct"], all(c["passed"][t] for t in counted)) for c in p["candidates"] if c["generator"] == gen]
        right = [ok for correct, ok in mine if correct]
        if right:
            pos, tp = pos + 1, tp + (2 * sum(right) >= len(right))
        neg, fp = neg + sum(not correct for correct, _ in mine), fp + sum(ok for correct, ok in mine if not correct)
    return {"TPR": _rate(tp, pos), "FPR": _rate(fp, neg)}


def surrogate_rows(exp, task) -> list[dict]:
    """The verifier table's rows for the written tests, fitted on the search split (every call known)."""
    from archsearch.bayes.evidence import Evidence
    from archsearch.bayes.plan import plan_of
    from archsearch.bayes.summary import verifier_table
    from archsearch.candidates import enumerate_space
    from archsearch.llm import CallCache
    from archsearch.space import SearchSpace

    specs = [spec for _, spec in enumerate_space(SearchSpace(ROOT / "spaces/sampling-model-tests.yaml"), task)]
    plans = [plan for plan in map(plan_of, specs) if plan is not None]
    evidence = Evidence(task, task.split("search"), CallCache(task.cache_url), {}, plans)
    post, obs = evidence.refresh(), evidence._obs
    rows = []
    for r in verifier_table(evidence):
        if not r.verifier.startswith("tests by"):
            continue
        v, g = evidence.verifier_names.index(r.verifier), [_label_of(evidence, k) for k in evidence.objects.generators].index(r.generator)
        # the table's FPR is averaged over the questions; the direct rate over the wrong programs, which
        # sit on the hard questions where the FPR is higher: weight the model's the same way
        cells = (obs.g == g) & obs.seen[:, v]
        wrong = (obs.judged_n - obs.judged_y)[cells, v].astype(float)
        skill = post.theta[:, g][:, None] - post.b[:, obs.q[cells]]
        fpr = 1 / (1 + np.exp(-(post.gamma[:, v, g][:, None] - post.lam[:, v][:, None] * skill)))
        weighted = (fpr * wrong).sum(axis=1) / wrong.sum()
        rows.append({"verifier": r.verifier, "generator": r.generator, "samples": r.judged, "TPR": str(r.tpr),
                     "FPR averaged over the questions": str(r.fpr),
                     "FPR over the wrong programs": f"{weighted.mean():.3f} [{np.percentile(weighted, 5):.3f}, "
                                                    f"{np.percentile(weighted, 95):.3f}]", "fit": post.method})
    return rows


def _label_of(evidence, key: str) -> str:
    from archsearch.bayes.summary import _label

    return _label(evidence.observer.layers[key])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=str(ROOT / "experiments/humaneval-local"))
    p.add_argument("--surrogate", action="store_true", help="also the surrogate's verifier rows for the written tests")
    args = p.parse_args()
    exp, task, client = replaying(args.experiment)

    async def run() -> list[dict]:
        try:
            return await measure(task, client, exp.dir)
        finally:
            await client.release_loop()

    problems = asyncio.run(run())
    result = {"all": summarise(problems)}
    for split in ("search", "select", "final"):
        ids = {r.id for r in task.split(split)}
        result[split] = summarise([p for p in problems if p["id"] in ids])
    search = [p for p in problems if p["id"] in {r.id for r in task.split("search")}]
    result["search"]["counted_as_the_surrogate_does"] = {gen: counted_once(search, gen) for gen in ("greedy", "T=0.8")}
    result["search"]["counted_one_at_a_time"] = {gen: counted_once(search, gen, alone=True) for gen in ("greedy", "T=0.8")}
    if args.surrogate:
        result["search"]["surrogate"] = surrogate_rows(exp, task)
        print(json.dumps(result["search"]["counted_as_the_surrogate_does"], indent=1))
        print(json.dumps(result["search"]["counted_one_at_a_time"], indent=1))
        print(json.dumps(result["search"]["surrogate"], indent=1))
    out = RESULTS / f"{exp.dir.name}-model-test-rates.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["all"], indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
