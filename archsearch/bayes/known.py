"""The model's data, from what the cache knows (``objects.Objects``): per (question, generator) cell
the samples and how many were right, what each verifier accepted of them, and every known
ranking and fusion with the correctness of its inputs."""

from __future__ import annotations

import json

import numpy as np

from ..techniques.base import model_identity
from ..techniques.generate import NOT_IDENTITY
from .model import Observations
from .objects import UNKNOWN, ObjectArrays, Objects

PROMPT_FIELDS = {"style", "system", "template", "personas", "instruction", "demos"}


def model_index(models) -> np.ndarray:
    """[G] one index per distinct model (price aside): greedy and sampled settings of a model share it."""
    ids: dict[str, int] = {}
    keys = [json.dumps(model_identity(m), sort_keys=True) for m in models]
    return np.array([ids.setdefault(k, len(ids)) for k in keys], int)


def generator_structure(layers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[G] each generator's model, setting and prompt-variant index: generators of one model share its
    ability; those of one setting (its temperature and every param but the prompt) share a shift;
    the model's first prompt is its reference (-1) and every other prompt of the model a variant."""
    models = model_index([layer.model for layer in layers])
    settings: dict[str, int] = {}
    variants: dict[str, int] = {}
    reference: dict[int, str] = {}
    setting_of, variant_of = [], []
    for m, layer in zip(models, layers):
        dumped = layer.params.model_dump(mode="json", exclude=NOT_IDENTITY)
        setting = json.dumps([int(m), {k: v for k, v in dumped.items() if k not in PROMPT_FIELDS}], sort_keys=True)
        prompt = json.dumps([int(m), {k: v for k, v in dumped.items() if k in PROMPT_FIELDS}], sort_keys=True)
        setting_of.append(settings.setdefault(setting, len(settings)))
        reference.setdefault(int(m), prompt)
        variant_of.append(-1 if reference[int(m)] == prompt else variants.setdefault(prompt, len(variants)))
    return models, np.array(setting_of, int), np.array(variant_of, int)


def _cells(objects: Objects, arrays: ObjectArrays, verifiable: bool) -> list[tuple]:
    """(q, g, n, right, [(judged, of which right, accepted right, accepted wrong) per verifier])."""
    G, Q = arrays.m.shape
    J = arrays.verdict.shape[0]
    rows = []
    for g in range(G):
        for q in range(Q):
            n = int(arrays.m[g, q])
            if not n:
                continue
            obj = arrays.sample[g, q, :n]
            right = arrays.correct[q, obj]
            counts = []
            if verifiable:
                seen = n if arrays.testable[q] else 0
                passed = arrays.rate[q, obj] == 1.0
                counts.append((seen, int(right.sum()) if seen else 0, int((passed & right).sum()) if seen else 0,
                               int((passed & ~right).sum()) if seen else 0))
            for j in range(J):
                v = arrays.verdict[j, q, obj]
                judged = v != UNKNOWN
                counts.append((int(judged.sum()), int((right & judged).sum()), int((right & (v == 1)).sum()),
                               int((~right & (v == 1)).sum())))
            for alone in (False, True):   # each writer's tests judging a cell together, then one sample at a time
                counts += [_written_counts(arrays.written, t, q, obj, right, alone) for t in range(arrays.written.writers)]
            rows.append((q, g, n, int(right.sum()), counts))
    return rows


def _written_counts(w, t: int, q: int, obj: np.ndarray, right: np.ndarray, alone: bool = False
                    ) -> tuple[int, int, int, int]:
    """A writer's verdicts on a cell's samples, every known answer judged together (``alone``: each
    by itself, so every test counts, a wrong one too). Right programs behave alike on a question's
    tests (a wrong expected value fails them all), so they count once: as passing when most pass."""
    if not w.known[t, q]:
        return 0, 0, 0, 0
    passed = (w.alone if alone else w.pool)[t, q, obj] == 1
    has_right = int(right.any())
    right_pass = int(has_right and 2 * int((passed & right).sum()) >= int(right.sum()))
    return int((~right).sum()) + has_right, has_right, right_pass, int((passed & ~right).sum())


def judge_models(generator_models: list, judges: dict[str, list], verifiable: bool) -> dict[str, np.ndarray]:
    """Per role, each judge's model as an index among the generators' models (-1: none of them): a
    judge, ranker or fuser whose model also samples has that model's ability as a covariate."""
    ids: dict[str, int] = {}
    for m in generator_models:
        ids.setdefault(json.dumps(model_identity(m), sort_keys=True), len(ids))

    def index(models: list) -> np.ndarray:
        return np.array([ids.get(json.dumps(model_identity(m), sort_keys=True), -1) for m in models], int)

    return {"verifier": np.concatenate([[-1] * int(verifiable), index(judges["verify"]),
                                        index(judges.get("test", [])), index(judges.get("test", []))]).astype(int),
            "ranker": index(judges["rank"]), "fuser": index(judges["fuse"])}


def observations(objects: Objects, arrays: ObjectArrays, structure: tuple, verifiable: bool,
                 verifier_names: list[str], judge_model: dict[str, np.ndarray] | None = None) -> Observations:
    """``structure``: each generator's model, setting and prompt variant (``generator_structure``);
    ``judge_model``: each judge's model among them (``judge_models``)."""
    rows = _cells(objects, arrays, verifiable)
    V = int(verifiable) + arrays.verdict.shape[0] + 2 * arrays.written.writers
    c = len(rows)
    jn, jy, tp, fp = (np.zeros((c, V), int) for _ in range(4))
    for r, (*_, counts) in enumerate(rows):
        for v, (a, b, t, f) in enumerate(counts):
            jn[r, v], jy[r, v], tp[r, v], fp[r, v] = a, b, t, f
    correct = arrays.correct
    rank_rows = [(r, correct[q, [o for o, _ in inputs]].astype(float), order[0], order[1] if len(order) > 1 else -1)
                 for (r, q, inputs), (order, _) in objects.ranks.items() if len(inputs) >= 2]
    width = max([2] + [len(y) for _, y, _, _ in rank_rows])
    R = len(rank_rows)
    rank_y, rank_valid = np.zeros((R, width)), np.zeros((R, width), bool)
    for k, (_, y, _, _) in enumerate(rank_rows):
        rank_y[k, : len(y)], rank_valid[k, : len(y)] = y, True
    fuse_rows = [(f, q, len(inputs), float(correct[q, [o for o, _ in inputs]].sum()),
                  float(any(c >= 0 for _, c in inputs)), float(correct[q, out]))
                 for (f, q, inputs, _), (out, _) in objects.fused.items()]
    fuse = np.array(fuse_rows, float).reshape(-1, 6)
    return Observations(
        q=np.array([r[0] for r in rows], int), g=np.array([r[1] for r in rows], int), n=np.array([r[2] for r in rows], int),
        y=np.array([r[3] for r in rows], int), tp=tp, fp=fp, seen=jn > 0, judged_n=jn, judged_y=jy,
        n_questions=arrays.questions, n_generators=arrays.m.shape[0], n_verifiers=V,
        verifier_runs_tests=np.repeat([1, 0, 1], [int(verifiable), arrays.verdict.shape[0], 2 * arrays.written.writers]),
        generator_names=list(objects.generators), verifier_names=verifier_names, generator_model=structure[0],
        generator_setting=structure[1], generator_variant=structure[2],
        rank_r=np.array([r[0] for r in rank_rows], int), rank_y=rank_y, rank_valid=rank_valid,
        rank_first=np.array([r[2] for r in rank_rows], int), rank_second=np.array([r[3] for r in rank_rows], int),
        n_rankers=len(objects.judges["rank"]),
        fuse_f=fuse[:, 0].astype(int), fuse_q=fuse[:, 1].astype(int), fuse_k=fuse[:, 2], fuse_m=fuse[:, 3],
        fuse_crit=fuse[:, 4], fuse_y=fuse[:, 5], n_fusers=len(objects.judges["fuse"]), judge_model=judge_model or {})
