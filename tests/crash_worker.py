"""A search worker for the kill -9 test: fake models with latency, every completed backend call
logged (key per line) so the test can count calls paid twice."""

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from archsearch.llm import Budget, CallCache, LLMClient  # noqa: E402
from archsearch.objectives import load_objective  # noqa: E402
from archsearch.search import Search, SearchSettings  # noqa: E402
from archsearch.space import SearchSpace  # noqa: E402
from archsearch.tasks import Task  # noqa: E402
from archsearch.testing import FakeLLM, NoisyArithmetic  # noqa: E402


class LoggingFake(FakeLLM):
    def __init__(self, log: Path, **kw):
        super().__init__(**kw)
        self.log = log.open("a", buffering=1)

    async def complete(self, model_id, messages, params, sample_index=0):
        result = await super().complete(model_id, messages, params, sample_index)
        key = hashlib.sha256(json.dumps([model_id, messages, params, sample_index], sort_keys=True).encode()).hexdigest()
        self.log.write(key + "\n")
        return result


def main(work: str, trials: int) -> None:
    work_dir, toy = Path(work), Path(__file__).parent / "fixtures" / "toy"
    backend = LoggingFake(work_dir / "paid.log", answers=NoisyArithmetic({"fake/strong": 0.75, "fake/weak": 0.35}),
                          latency_s=0.01)
    client = LLMClient(backend, CallCache(f"sqlite:///{work_dir / 'calls.sqlite'}"), max_concurrency=8)
    settings = SearchSettings(task=Task(toy / "task.yaml"), space=SearchSpace(toy / "space.yaml"),
                              objective=load_objective(toy / "objective.yaml"), trials=trials,
                              storage=f"sqlite:///{work_dir / 'study.sqlite'}", study_name="crash", out_dir=work_dir,
                              budget=Budget(), concurrency=8)
    Search(settings, client).run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
