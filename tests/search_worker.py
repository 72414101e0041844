"""A search worker process for the kill -9 and distributed tests: fake models with latency, every
completed backend call logged (one key per line) so tests can count calls paid twice."""

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from archsearch.llm import Budget, CallCache, LLMClient  # noqa: E402
from archsearch.llm.shared_budget import SharedBudget  # noqa: E402
from archsearch.objectives import load_objective  # noqa: E402
from archsearch.optimize.search import Search, SearchSettings  # noqa: E402
from archsearch.space import SearchSpace  # noqa: E402
from archsearch.tasks import Task  # noqa: E402
from archsearch.testing import FakeLLM, NoisyArithmetic  # noqa: E402


class LoggingFake(FakeLLM):
    """Logs each answered request; with ``cache``, also a request for a call the cache already holds
    (paid twice), and with ``jitter`` holds one request in twelve for 2 s (a slow tail to hedge)."""

    def __init__(self, log: Path, cache: CallCache | None = None, jitter: bool = False, **kw):
        super().__init__(**kw)
        self.log = log.open("a", buffering=1)
        self.cache, self.jitter, self.started = cache, jitter, 0

    async def complete(self, model_id, messages, params, sample_index=0):
        import asyncio

        from archsearch.llm import call_key

        if self.cache is not None and self.cache.get(call_key(model_id, messages, params, sample_index)) is not None:
            self.log.write("REPAID\n")
        self.started += 1
        if self.jitter and self.started % 12 == 0:
            await asyncio.sleep(2.0)
        result = await super().complete(model_id, messages, params, sample_index)
        key = hashlib.sha256(json.dumps([model_id, messages, params, sample_index], sort_keys=True).encode()).hexdigest()
        self.log.write(key + "\n")
        return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work")
    p.add_argument("trials", type=int)
    p.add_argument("--storage")
    p.add_argument("--cache")
    p.add_argument("--budget-usd", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default="paid.log")
    p.add_argument("--jitter", action="store_true", help="hold one request in twelve for 2 s: hedged calls")
    p.add_argument("--no-hedging", action="store_true",
                   help="never send a second request for a slow call (a hedge pays a call twice on purpose)")
    a = p.parse_args()
    work, toy = Path(a.work), Path(__file__).parent / "fixtures" / "toy"
    cache = CallCache(a.cache or f"sqlite:///{work / 'calls.sqlite'}", claims=bool(a.cache))
    backend = LoggingFake(work / a.log, cache=CallCache(cache.url) if a.jitter else None, jitter=a.jitter,
                          answers=NoisyArithmetic({"fake/strong": 0.75, "fake/weak": 0.35}), latency_s=0.01)
    budget = SharedBudget(cache.engine, "study:crash", usd=a.budget_usd) if a.budget_usd is not None else Budget()
    client = LLMClient(backend, cache, max_concurrency=8, hedging=not a.no_hedging)
    settings = SearchSettings(task=Task(toy / "task.yaml"), space=SearchSpace(toy / "space.yaml"),
                              objective=load_objective(toy / "objective.yaml"), trials=a.trials,
                              storage=a.storage or f"sqlite:///{work / 'study.sqlite'}", study_name="crash",
                              out_dir=work, budget=budget, concurrency=8, seed=a.seed)
    search = Search(settings, client)
    outcomes = search.run()
    print(json.dumps({"usd": client.stats.usd, "hedge_usd": client.stats.hedge_usd, "calls": client.stats.calls, "stopped": search.stopped,
                      "trials": [o.number for o in outcomes], "hedges": sum(client.stats.hedges.values())}))


if __name__ == "__main__":
    main()
