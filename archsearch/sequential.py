"""Adaptive compute: a generator that draws one sample at a time and stops as soon as it can.

``stop: accepted`` -- stop at the first sample the next layer (test or verify) accepts (the fLaws
"resample until accepted" strategy); if none of the n is accepted, that layer's none-passed policy
decides over all of them. ``stop: settled`` -- stop once the next layer's vote cannot change or its
leader is sure at the configured confidence (Adaptive-Consistency); with a filter between the
generator and the vote, the vote counted is the one over the accepted samples, so the generator
stops once enough accepted candidates agree (a verifier's false positive no longer wins by being
first; a disagreement among accepted ones buys more samples). Candidates of earlier layers (a
greedy answer leading the samples) are judged first and count like drawn ones. Sample i is the same cached
object as in a fixed-n pipeline, so a replayed search evaluates these for free, and calls, tokens
and latency are what was actually spent: the samples and their checks run one after another.
"""

from __future__ import annotations

from .techniques.base import Candidate, Filter, LayerContext
from .techniques.generate import Generate
from .techniques.vote import Vote


async def until_accepted(gen: Generate, filt: Filter, gctx: LayerContext, fctx: LayerContext, question,
                         before: list[Candidate]) -> list[Candidate]:
    """The candidates of earlier layers (e.g. a greedy answer) are judged first: if one is accepted,
    nothing is drawn."""
    judged = list(await filt.judge(fctx, question, before)) if before else []
    indices = gen.indices(gctx)
    for k, i in enumerate(indices):
        if any(filt.accepted(fctx, c) for c in judged):
            break
        sample = (await gen.sample(gctx, question, i)).with_(cid=f"{gctx.trace.index}.{k}")
        judged.extend(await filt.judge(fctx, question, [sample]))
    return filt.keep(fctx, judged)


async def until_settled(gen: Generate, vote: Vote, gctx: LayerContext, vctx: LayerContext, question,
                        before: list[Candidate]) -> list[Candidate]:
    drawn: list[Candidate] = []
    indices = gen.indices(gctx)
    for k, i in enumerate(indices):
        drawn.append((await gen.sample(gctx, question, i)).with_(cid=f"{gctx.trace.index}.{k}"))
        if await vote.settled(vctx, question, before + drawn, len(indices) - k - 1, gen.params.confidence):
            break
    return await vote.apply(vctx, question, before + drawn)


async def until_settled_among_accepted(gen: Generate, filt: Filter, vote: Vote, gctx: LayerContext, fctx: LayerContext,
                                       vctx: LayerContext, question, before: list[Candidate]) -> list[Candidate]:
    judged = list(await filt.judge(fctx, question, before)) if before else []
    indices = gen.indices(gctx)
    for k, i in enumerate(indices):
        sample = (await gen.sample(gctx, question, i)).with_(cid=f"{gctx.trace.index}.{k}")
        [checked] = await filt.judge(fctx, question, [sample])
        judged.append(checked)
        accepted = [c for c in judged if filt.accepted(fctx, c)]
        if accepted and await vote.settled(vctx, question, accepted, len(indices) - k - 1, gen.params.confidence):
            break
    kept = filt.keep(fctx, judged)
    fctx.trace.candidates_out = len(kept)
    return await vote.apply(vctx, question, kept)
