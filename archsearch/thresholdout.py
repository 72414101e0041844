"""A reusable holdout (Thresholdout; Dwork, Feldman, Hardt, Pitassi, Reingold, Roth, Science 2015).

Comparing many pipelines on one holdout split overfits it. Thresholdout answers a query with the
training (search-split) estimate unless it differs from the holdout (select-split) estimate by
more than a noisy threshold; only then does it reveal the holdout estimate, with noise, and spend
one unit of a fixed budget. Its state lives in the study, so resumes and repeated queries (the
same pipeline asked again) never spend twice or see fresh noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Thresholdout:
    threshold: float = 0.04      # accuracy points of disagreement that count as overfitting
    sigma: float = 0.01          # Laplace noise scale
    budget: int = 10             # overfitting detections the holdout can answer
    seed: int = 0
    used: int = 0
    queries: int = 0
    answers: dict[str, dict] = field(default_factory=dict)   # query key -> what was answered

    @classmethod
    def from_state(cls, state: dict | None, **defaults) -> Thresholdout:
        return cls(**{**defaults, **(state or {})})

    def state(self) -> dict:
        return {"threshold": self.threshold, "sigma": self.sigma, "budget": self.budget, "seed": self.seed,
                "used": self.used, "queries": self.queries, "answers": self.answers}

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget

    def answer(self, key: str, train: float, holdout: float) -> dict:
        """{'value', 'revealed': whether the holdout estimate was used, 'exhausted'}; cached per key."""
        if key in self.answers:
            return self.answers[key]
        rng = np.random.default_rng([self.seed, self.queries, self.used])
        self.queries += 1
        if self.exhausted:
            out = {"value": train, "revealed": False, "exhausted": True}
        else:
            noisy_threshold = self.threshold + rng.laplace(0, 2 * self.sigma)
            if abs(train - holdout) > noisy_threshold + rng.laplace(0, 4 * self.sigma):
                self.used += 1
                out = {"value": float(np.clip(holdout + rng.laplace(0, self.sigma), 0, 1)), "revealed": True,
                       "exhausted": False}
            else:
                out = {"value": train, "revealed": False, "exhausted": False}
        self.answers[key] = out
        return out
