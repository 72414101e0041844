"""``test``: a candidate passes when every counted test passes; the layer keeps the passing ones (or
those passing the most, or all, annotated with the share passed and their behaviour on the tests).

- ``source: task``, the visible tests: a known answer's pass rate was measured; a drawn one passed
  with the visible tests' TPR or FPR when it was made. Questions without visible tests are left as
  they are.
- ``source: model`` / ``task+model``, tests a model writes (``written.py``): the writer's calls are
  charged on every question (replayed when cached, drawn from the cost model when not). When the
  tests and every judged answer are known, the verdicts are replayed exactly, the suspected-wrong
  rule included. Otherwise a known answer keeps its verdict among all the question's known answers,
  and a drawn one is accepted with the writer's TPR if right -- one draw per question, since right
  programs behave alike on the tests (a wrong expected value fails them all) -- or its FPR if wrong.
"""

from __future__ import annotations

import numpy as np

from ..objects import CANONICAL, FRESH, UNKNOWN
from ..plan import written_tests
from ..written import counted_verdicts
from .state import Draws, State, joined_or_fresh, per_generator, per_pipeline
from .verify import FilterStep


class TestStep(FilterStep):
    kind = "test"

    def __init__(self, layers: list, ctx) -> None:
        super().__init__(layers, ctx)
        self.best = per_pipeline([layer.params.keep == "best" for layer in layers])
        self.all = per_pipeline([layer.params.keep == "all" for layer in layers])
        writers = ctx.judges.get("test", {})
        self.t = np.array([writers[layer.key] if written_tests(layer) else -1 for layer in layers])
        self.calls = np.array([layer.params.n_calls if written_tests(layer) else 0 for layer in layers])
        self._annotation = None

    def judge(self, s: State, draws: Draws, mask: np.ndarray, alone: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, None]:
        applies = np.broadcast_to(self.ctx.arrays.testable[None, None, :], mask.shape[:3]) & mask.any(axis=-1)
        verdict = mask & (s.rate == 1.0) & applies[..., None]
        tested = mask & applies[..., None]
        annotation = [tested, np.where(tested, s.rate, 0.0), s.cl1, s.lv1, s.cl1, s.lv1]
        for t in np.unique(self.t[self.t >= 0]):
            mine = per_pipeline(self.t == t)
            found = self._written(s, draws, mask, np.zeros(mask.shape, bool) if alone is None else alone & mask, int(t))
            verdict, applies = np.where(mine, found[0], verdict), np.where(mine[..., 0], found[1], applies)
            annotation = [np.where(mine, new, old) for new, old in zip(found[2:], annotation)]
        self._annotation = annotation
        return verdict, applies, None

    def _written(self, s: State, draws: Draws, mask: np.ndarray, alone: np.ndarray, t: int) -> list[np.ndarray]:
        """Writer t's verdicts, where it applies, and what the runtime annotates the candidates with.
        The ``mask`` slots not ``alone`` are judged together; each ``alone`` one by itself."""
        w, ctx = self.ctx.arrays.written, self.ctx
        q3, q4 = np.arange(w.known.shape[1])[None, None, :], np.arange(w.known.shape[1])[None, None, :, None]
        safe = np.maximum(s.obj, 0)
        tests = w.known[t][q3]                                                 # [1, 1, Q]
        any_tests = bool(tests.any())   # False on new questions: nothing replays, every verdict is drawn
        slot_known = s.known & tests[..., None]
        grouped = mask & ~alone
        alone = alone | (grouped & (grouped.sum(axis=-1, keepdims=True) == 1))   # a group of one is judged alone
        together = mask & ~alone
        replay = tests[..., None] & np.where(alone, s.known, ~(together & ~s.known).any(axis=-1, keepdims=True))
        if any_tests:
            args = w.mask[t][q4, safe], w.checked[t][q4, safe]
            exact, share = counted_verdicts(*args, together, w.n[t][q3], w.written[t][q3])
            by_itself = counted_verdicts(*args, mask, w.n[t][q3], np.zeros_like(w.written[t][q3]))   # every test counts
            exact, share = np.where(alone, by_itself[0], exact), np.where(alone, by_itself[1], share)
        v, by_one = ctx.writer_row(t), ctx.writer_row(t, alone=True)   # by_one: every test counts, a wrong one too
        right = np.where(alone, w.right_alone[t][q4], w.right[t][q4]) if any_tests else None
        # one uniform per (writer, question) for right programs, and one per sample for wrong ones,
        # whether judged together or alone (the same tests pass or fail the same programs)
        u_right = draws.written_right[:, t][:, None, :, None]
        u_wrong = draws.verdict_uniforms(np.full(s.gen.shape[1], v - ctx.visible), s)

        def rate(of, *a):   # of(by_one) where judged alone, of(v) elsewhere: only the side in use is computed
            if not alone.any():
                return of(v, *a)
            return of(by_one, *a) if alone.all() else np.where(alone, of(by_one, *a), of(v, *a))

        drawn_right = u_right < rate(draws.tpr, s.gen)
        if right is not None:
            drawn_right = np.where(right != UNKNOWN, right == 1, drawn_right)
        drawn_wrong = u_wrong < rate(draws.fpr, s.gen)
        # a known slot among drawn ones keeps its verdict with the question's known answers (a known
        # slot judged alone always replays)
        mixed = np.where(s.correct, drawn_right, drawn_wrong)
        if any_tests:
            mixed = np.where(slot_known, w.pool[t][q4, safe] == 1, mixed)
            verdict = np.where(replay, exact, mixed) & mask
            share = np.where(replay, share, verdict.astype(float))
        else:
            verdict = mixed & mask
            share = verdict.astype(float)
        applies = np.where(tests, w.n[t][q3] > 0, True) & mask.any(axis=-1)
        tested = mask & applies[..., None]
        ag = self._drawn_key(s, draws, verdict)
        if any_tests:
            ag, aglv = np.where(slot_known, w.key[t][q4, safe], ag), np.where(slot_known, w.level[t][q4, safe], 2)
        else:
            aglv = np.full(ag.shape, 2, w.level.dtype)
        # a vote by behaviour afterwards compares the behaviour on these tests where the question has
        # visible tests (elsewhere it compares texts) and the candidate has one
        behaves = tested & (aglv == 2) & ctx.arrays.testable[None, None, :, None]
        return [verdict, applies, tested, np.where(tested, share, 0.0), ag, aglv,
                np.where(behaves, ag, s.cl1), np.where(behaves, 2, s.lv1)]

    def _drawn_key(self, s: State, draws: Draws, verdict: np.ndarray) -> np.ndarray:
        """A drawn program's behaviour on written tests' inputs: a right one, or a wrong one that
        passes them all (it returns the expected values), is one answer with the right programs; a
        wrong one that fails repeats its question's modal wrong behaviour at the pool's rate for
        behaviour (wrong programs often agree on inputs), else is new."""
        D = len(draws.d)
        u = (np.arange(D)[:, None, None, None], s.gen, np.arange(s.gen.shape[2])[None, None, :, None],
             np.clip(s.src, 0, draws.joins.shape[-1] - 1))
        agree = per_generator(draws.agreement[1, 1], s.gen)
        joins = np.where(s.src >= 0, draws.joins[u], draws.rng.random(s.gen.shape))
        return np.where(s.correct | verdict, CANONICAL, joined_or_fresh(joins, agree, False, FRESH + np.arange(s.gen.shape[-1])))

    def pay(self, s: State, draws: Draws, judged: np.ndarray, cost: None) -> np.ndarray:
        """The writers' calls: ``n_calls`` per question, made whatever the candidates."""
        if not self.calls.any():
            return np.zeros(judged.shape)
        w = self.ctx.arrays.written
        D, P, Q, _ = judged.shape
        K = int(self.calls.max())
        made = np.broadcast_to((np.arange(K)[None, :] < self.calls[:, None])[None, :, None, :], (D, P, Q, K))
        known_cost = np.full((3, D, P, Q, K), np.nan)
        for t in np.unique(self.t[self.t >= 0]):
            mine = (self.t == t)[None, :, None, None] & w.known[t][None, None, :, None]
            recorded = np.full((3, Q, K), np.nan)
            width = min(K, w.cost.shape[-1])
            recorded[..., :width] = w.cost[:, t, :, :width]
            known_cost = np.where(mine[None], recorded[:, None, None], known_cost)
        return self.charge(s, draws, made, known_cost, "test")

    def annotate(self, s: State, judged: np.ndarray) -> None:
        tested, trate, ag, aglv, cl1, lv1 = self._annotation
        on = tested & judged
        s.tested = np.where(judged, tested, s.tested)
        s.trate, s.ag, s.aglv = np.where(on, trate, s.trate), np.where(on, ag, s.ag), np.where(on, aglv, s.aglv)
        s.cl1, s.lv1 = np.where(on, cl1, s.cl1), np.where(on, lv1, s.lv1)

    def record(self, s: State, verdict: np.ndarray, judged: np.ndarray) -> None:
        super().record(s, verdict, judged)
        self.annotate(s, judged)
        self._annotation = None

    def keep(self, s: State, judged: np.ndarray, verdict: np.ndarray, applies: np.ndarray) -> np.ndarray:
        rate = np.where(s.tested, s.trate, s.rate)
        top = np.where(judged, rate, -1.0).max(axis=-1, keepdims=True)
        best = judged & (rate == top)
        kept = np.where(self.all, judged, np.where(self.best, best, super().keep(s, judged, verdict, applies)))
        return np.where(applies[..., None], kept, judged)
