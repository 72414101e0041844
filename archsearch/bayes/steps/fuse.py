"""``fuse``: a model reads every candidate (and critique) and writes ``n_out`` new answers (one at
temperature 0), which replace them. A known fusion of known inputs is replayed (its answer is a
known object); a drawn one is right with the fuser's curve in the share of right inputs,
P = sigmoid(a + b logit((m + 1/2) / (k + 1)) - d b_q + e critiqued), for m right of k inputs."""

from __future__ import annotations

import numpy as np

from ..objects import CANONICAL, FRESH, UNKNOWN
from .lookup import known_inputs
from .state import Draws, State, Step, joined_or_fresh, per_pipeline, sigmoid


def fuse_share(m, k):
    """logit((m + 1/2) / (k + 1)): the share of right inputs, kept off 0 and 1."""
    share = (m + 0.5) / (k + 1.0)
    return np.log(share) - np.log1p(-share)


class FuseStep(Step):
    kind = "fuse"
    asks = True

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.f = np.array([ctx.judges["fuse"][layer.key] for layer in layers])
        self.outputs = np.array([layer.params.n_out if layer.params.temperature > 0 else 1 for layer in layers])
        self.adds = int(self.outputs.max())

    def apply(self, s: State, draws: Draws) -> np.ndarray:
        a = self.ctx.arrays
        D, P, Q, N = s.alive.shape
        k, m = s.alive.sum(axis=-1), (s.alive & s.correct).sum(axis=-1)
        first = np.argmax(s.alive, axis=-1)[..., None]
        gen = np.take_along_axis(s.gen, first, axis=-1)[..., 0]                       # the first input's generator
        critiqued = (s.alive & (s.critic >= 0)).any(axis=-1)
        fuse = {x: draws.fuse[x][:, self.f][:, :, None] for x in "abde"}
        chance = sigmoid(fuse["a"] + fuse["b"] * fuse_share(m, k) - fuse["d"] * draws.b[:, None, :] + fuse["e"] * critiqued)
        K = self.adds
        out = slice(self.offset, self.offset + K)
        made = (k >= 1)[..., None] & (np.arange(K) < per_pipeline(self.outputs))
        obj = np.full((D, P, Q, K), UNKNOWN)
        cost = np.full((3, D, P, Q, K), np.nan)
        if self.ctx.objects is not None:
            self._replay(s, obj, cost)
        known, safe = obj != UNKNOWN, np.maximum(obj, 0)
        q4 = np.arange(Q)[None, None, :, None]
        correct = np.where(known, a.correct[q4, safe], draws.rng.random((D, P, Q, K)) < chance[..., None])
        gen4 = np.broadcast_to(gen[..., None], (D, P, Q, K))
        drawn = self._drawn_keys(a, draws, correct, gen4)
        s.alive[:] = False
        s.alive[..., out] = made
        s.obj[..., out], s.correct[..., out], s.gen[..., out], s.src[..., out] = obj, correct, gen4, UNKNOWN
        s.rate[..., out] = np.where(known, a.rate[q4, safe], drawn["rate"])
        for name, mode in (("cl0", 0), ("cl1", 1)):
            getattr(s, name)[..., out] = np.where(known, a.cluster[mode][q4, safe], drawn[name])
        s.lv0[..., out] = np.where(known, a.level[0][q4, safe], 1)
        s.lv1[..., out] = np.where(known, a.level[1][q4, safe], drawn["lv1"])
        s.weight[..., out], s.critic[..., out], s.tested[..., out] = 0.0, UNKNOWN, False
        return self.charge(s, draws, made, cost, "fuse", k[..., None]).max(axis=-1, initial=0.0)

    def _replay(self, s: State, obj: np.ndarray, cost: np.ndarray) -> None:
        objects = self.ctx.objects
        for (d, p, q), inputs in known_inputs(s, self.ctx.arrays.critiqued):
            for i in range(int(self.outputs[p])):
                hit = objects.fused.get((int(self.f[p]), q, inputs, i))
                if hit is None:
                    self.ctx.ask(("fuse", int(self.f[p]), q, inputs, i))
                    continue
                obj[d, p, q, i] = hit[0]
                cost[:, d, p, q, i] = hit[1].tokens_in, hit[1].tokens_out, hit[1].latency_s

    def _drawn_keys(self, a, draws: Draws, correct: np.ndarray, gen: np.ndarray) -> dict[str, np.ndarray]:
        """A drawn fused answer as a drawn sample of its first input's generator: its visible-test
        result and whether it repeats its question's modal answer."""
        D, P, Q, K = correct.shape
        testable = a.testable[None, None, :, None]
        rate = np.zeros(correct.shape)
        if self.ctx.visible:
            rate = (testable & (draws.rng.random(correct.shape) < np.where(correct, draws.tpr(0, gen), draws.fpr(0, gen))))
            rate = rate.astype(float)
        q4 = np.arange(Q)[None, None, :, None]
        slot = FRESH + self.offset + np.arange(K)

        def key(mode: int) -> np.ndarray:
            agree = np.where(correct, draws.agreement[0, mode][np.arange(D)[:, None, None, None], gen, q4],
                             draws.agreement[1, mode][np.arange(D)[:, None, None, None], gen, q4])
            return joined_or_fresh(draws.rng.random(correct.shape), agree, correct, slot)

        cl0 = key(0)
        cl1 = np.where(testable, np.where(rate == 1.0, CANONICAL, key(1)), cl0)
        muted = ~correct & (draws.rng.random(correct.shape) < a.mute_rate)
        return {"rate": rate, "cl0": cl0, "cl1": cl1, "lv1": np.where(testable & ~muted, 2, 1)}
