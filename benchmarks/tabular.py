"""Score every pipeline of a space on the search split from the recorded pool, without new calls.
Latency is measured on a second pass, when every program's sandbox run is memoised: the calls'
replayed latency plus the runtime's own time in layers that paid no call (kept per row, by layer
place, ``spec.layer_places``: what the surrogate's non-call time is learnt from; a table kept under
another version's places is rebuilt).

Shared by the sampler benchmark and the surrogate calibration: each row holds a pipeline's measured
accuracy, calls, tokens and latency per question, and the call keys it consumed (every cache hit
of its real evaluation: samples, verdicts, critiques, rankings, fusions). Tables are cached as JSON
under benchmarks/results/ with the pool's size (delete the file to rebuild); a pool that grew since
(a recording under way) has its incomplete pipelines scored again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from archsearch.candidates import enumerate_space
from archsearch.errors import LLMCallError
from archsearch.evaluate import aevaluate
from archsearch.experiment import Experiment
from archsearch.llm import CallCache, LLMClient
from archsearch.pipeline import Pipeline
from archsearch.sandbox import RecordedRuns
from archsearch.space import SearchSpace, spec_fingerprint
from archsearch.spec import layer_places
from archsearch.stats import percentile
from archsearch.tasks import Task

RESULTS = Path(__file__).resolve().parent / "results"


class NoCalls:
    """A backend that refuses: the benchmark must only replay the pool."""

    async def complete(self, model_id, messages, params, sample_index=0):
        raise LLMCallError(model_id, "not in the recorded pool")


def replaying(experiment: str | Path) -> tuple[Experiment, Task, LLMClient]:
    """An experiment's folder, its task and a client that answers only from its recorded pool."""
    exp = Experiment(experiment)
    task = Task(exp.path(exp.config.task))
    return exp, task, LLMClient(NoCalls(), CallCache(task.cache_url), max_retries=0)


class FilteredCache:
    """The cache as a search that has bought only ``allowed`` calls would see it."""

    def __init__(self, cache: CallCache, allowed: set[str]) -> None:
        self.cache, self.allowed, self.claims = cache, allowed, False

    def get(self, key: str):
        return self.cache.get(key) if key in self.allowed else None

    def created(self, key: str):
        return self.cache.created(key) if key in self.allowed else None


class RecordingCache:
    """The cache, noting every key it answered: the calls a pipeline consumed."""

    def __init__(self, cache: CallCache) -> None:
        self.cache, self.hits, self.claims = cache, set(), False

    def get(self, key: str):
        row = self.cache.get(key)
        if row is not None:
            self.hits.add(key)
        return row


@dataclass
class Row:
    params: dict
    fingerprint: str
    accuracy: float
    calls_per_question: float
    tokens_per_question: float
    latency_p50_s: float
    keys: frozenset[str]
    complete: bool
    non_call: dict[str, list[float]] | None = None   # seconds of the layers that paid no call, by layer place


def build_table(experiment: Path, space_path: Path, split: str = "search") -> tuple[list[Row], Task, list, CallCache, dict]:
    task = Task(experiment / "task.yaml")
    records = task.split(split)
    cache = CallCache(task.cache_url)
    memo: dict = RecordedRuns(cache)   # sandbox runs kept in the call cache: a rebuild re-runs none
    out = RESULTS / f"{experiment.name}-{space_path.stem}-{split}-table.json"
    pipelines = enumerate_space(SearchSpace(space_path), task)
    calls, kept = len(cache), {}
    if out.exists():
        saved = json.loads(out.read_text())
        saved = saved if isinstance(saved, dict) else {"cache_calls": None, "rows": saved}   # before cache_calls
        rows = [Row(**{**r, "keys": frozenset(r["keys"])}) for r in saved["rows"]]
        places = {spec_fingerprint(s): set(layer_places(s)) for _, s in pipelines}
        if {r.fingerprint for r in rows} != {spec_fingerprint(s) for _, s in pipelines}:
            print(f"{out.name} was built for another version of the space: rebuilding")
        elif any(r.non_call is None or not set(r.non_call) <= places[r.fingerprint] for r in rows):
            print(f"{out.name} was built before non-call times were kept by these layer places: rebuilding")
        elif saved["cache_calls"] in (None, calls) or all(r.complete for r in rows):
            return rows, task, records, cache, memo
        else:   # the pool grew while being recorded: score again what it could not complete
            kept = {r.fingerprint: r for r in rows if r.complete}
            print(f"{out.name}: the pool grew ({saved['cache_calls']} -> {calls} calls), rescoring "
                  f"{len({r.fingerprint for r in rows}) - len(kept)} incomplete pipelines")
    rows, by_fingerprint = [], {}
    for params, spec in pipelines:
        fingerprint = spec_fingerprint(spec)
        if fingerprint in by_fingerprint or fingerprint in kept:   # listed under other params, or scored before
            rows.append(Row(**{**asdict(by_fingerprint.get(fingerprint) or kept[fingerprint]), "params": params}))
            by_fingerprint[fingerprint] = rows[-1]
            continue
        recording = RecordingCache(cache)
        client = LLMClient(NoCalls(), recording, max_retries=0)

        async def score(spec=spec, client=client):
            try:
                return await aevaluate(Pipeline(spec, client, sandbox_memo=memo), task, records, split, concurrency=40)
            finally:
                await client.release_loop()

        asyncio.run(score())      # once to run every program in the sandbox (memoised) ...
        report = asyncio.run(score())   # ... then measured: latency without the sandbox's first runs
        m = report.measured()
        tokens = sum(o.tokens for o in report.scored) / max(1, len(report.scored))
        rows.append(Row(params, fingerprint, m.accuracy, m.calls_per_question, tokens,
                        percentile([o.seconds for o in report.scored], 50), frozenset(recording.hits),
                        complete=not report.failures,
                        non_call={k: [round(x, 5) for x in xs] for k, xs in report.non_call_times().items()}))
        by_fingerprint[fingerprint] = rows[-1]
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cache_calls": calls, "rows": [{**asdict(r), "keys": sorted(r.keys)} for r in rows]}))
    return rows, task, records, cache, memo
