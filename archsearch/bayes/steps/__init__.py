"""The surrogate step of each technique: how its layer changes the simulated candidates.

One file per built-in technique. A plugin technique opts in with a class attribute
``surrogate_step = "package.module:StepClass"`` (a subclass of ``state.Step``); without one, the
pipelines that contain it are not modelled (and only those).
"""

from __future__ import annotations

import importlib

BUILTIN = {
    "generate": "archsearch.bayes.steps.generate:GenerateStep",
    "verify": "archsearch.bayes.steps.verify:VerifyStep",
    "test": "archsearch.bayes.steps.unit_test:TestStep",
    "vote": "archsearch.bayes.steps.vote:VoteStep",
    "rank": "archsearch.bayes.steps.rank:RankStep",
    "critique": "archsearch.bayes.steps.critique:CritiqueStep",
    "fuse": "archsearch.bayes.steps.fuse:FuseStep",
}


def step_class(kind: str):
    """The step class for a technique kind, or None."""
    target = BUILTIN.get(kind)
    if target is None:
        from ...registry import technique_class

        technique = technique_class(kind)
        target = getattr(technique, "surrogate_step", None) if technique is not None else None
    if not target:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
