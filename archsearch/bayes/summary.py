"""What the posterior says about a search's result: honest accuracy intervals for the front (no
winner's curse), the verifier's error rates, and the resampling ceiling they imply."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import PipelineSpec
from .observe import features, pipeline_shape


@dataclass
class PipelineBelief:
    mean: float
    low: float      # 5th percentile of the posterior predictive score on these questions
    high: float     # 95th percentile


@dataclass
class VerifierBelief:
    tpr: tuple[float, float, float]        # mean, 5%, 95%
    fpr: tuple[float, float, float]
    ceiling: tuple[float, float, float]    # accuracy of resampling until the verifier accepts, k -> inf
    best_k: int                            # samples that maximise P(correct) - fp_cost * P(accepted wrong)
    fp_cost: float


def _band(x: np.ndarray) -> tuple[float, float, float]:
    return float(np.mean(x)), float(np.percentile(x, 5)), float(np.percentile(x, 95))


def believe(sampler, specs: list[PipelineSpec]) -> dict[int, PipelineBelief] | None:
    """Posterior accuracy per spec (index in ``specs``), or None when the model does not cover them."""
    from .predict import predict_accuracy

    shapes = [pipeline_shape(s) for s in specs]
    if not sampler.candidates() or any(s is None for s in shapes):
        return None
    known = {g.key for g in sampler._generators}
    if any(s.generator.key not in known for s in shapes):
        return None
    posterior = sampler.last_posterior or sampler.fit()
    if posterior is None:
        return None
    acc = predict_accuracy(posterior, features(shapes, sampler._generators), predictive_rng=np.random.default_rng(0),
                           testable=sampler.observer.testable())
    return {i: PipelineBelief(*_band(acc[:, i])) for i in range(len(specs))}


def new_questions_belief(sampler, spec: PipelineSpec, questions: int, seed: int = 0) -> PipelineBelief | None:
    """The score to expect on ``questions`` questions the search never saw (the held-out split):
    new difficulties drawn from the fitted spread, then each question right or wrong."""
    import dataclasses

    from .predict import predict_accuracy

    shape = pipeline_shape(spec)
    posterior = sampler.last_posterior
    if shape is None or posterior is None:
        return None
    rng = np.random.default_rng(seed)
    unseen = np.zeros((posterior.theta.shape[1], questions))
    fresh = dataclasses.replace(posterior, b=rng.normal(size=(posterior.draws, questions)) * posterior.sigma_b[:, None],
                                cell_n=unseen, cell_y=unseen)
    testable = rng.random(questions) < sampler.observer.testable().mean()
    acc = predict_accuracy(fresh, features([shape], sampler._generators), predictive_rng=rng, testable=testable, cell_rng=rng)
    return PipelineBelief(*_band(acc[:, 0]))


def verifier_belief(sampler, spec: PipelineSpec, fp_cost: float, k_max: int = 64) -> VerifierBelief | None:
    shape = pipeline_shape(spec)
    posterior = sampler.last_posterior
    if shape is None or posterior is None or posterior.tau.shape[1] == 0:
        return None
    g = [x.key for x in sampler._generators].index(shape.generator.key)
    theta = posterior.theta[:, g]
    skill = theta[:, None] - posterior.b                                   # [D, Q]
    p = posterior.cell_p(np.random.default_rng(0))[:, g]
    c = 1 / (1 + np.exp(-posterior.tau[:, 0]))[:, None]
    f = 1 / (1 + np.exp(-(posterior.gamma[:, 0][:, None] - posterior.lam[:, 0][:, None] * skill)))
    a = c * p + f * (1 - p)
    ceiling = (c * p / a).mean(axis=1)
    ks = np.arange(1, k_max + 1)[:, None, None]
    accepted = 1 - (1 - a[None]) ** ks
    correct = c * p / a * accepted
    utility = (correct - fp_cost * (accepted - correct)).mean(axis=(1, 2))
    return VerifierBelief(tpr=_band(c[:, 0]), fpr=_band(f.mean(axis=1)), ceiling=_band(ceiling),
                          best_k=int(ks[np.argmax(utility), 0, 0]), fp_cost=fp_cost)
