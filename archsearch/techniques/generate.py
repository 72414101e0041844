"""``generate``: n samples from one model, in one of several prompt styles, optionally with an
instruction of its own and worked examples (demonstrations) shown before the question."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from pydantic import Field, model_validator

from ..llm.cache import request_key
from ..llm.models import ModelSpec
from ..validation import Strict
from .base import Candidate, LayerContext, Technique, fill, model_identity

Style = Literal["direct", "chain_of_thought", "rereading", "personas"]

STYLE_TEMPLATES: dict[str, str] = {
    "direct": "{question}",
    "chain_of_thought": "{question}\n\nThink step by step, then state the final answer on the last line.",
    "rereading": "{question}\n\nRead the question again: {question}",
    "personas": "{question}",
}
DEFAULT_PERSONAS = [
    "You are a careful expert who checks every step.",
    "You are a patient teacher who explains the reasoning plainly.",
    "You are a pragmatic engineer who prefers the simplest correct solution.",
]


NOT_IDENTITY = {"n", "model", "stop", "confidence"}   # how many samples and when to stop: not which ones


class Demo(Strict):
    """One worked example: a question as the task renders it and an answer the task's scorer accepts."""

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    id: str = Field("", description="the demos-split record it came from (provenance only)")


class GenerateParams(Strict):
    model: str
    n: int = Field(1, ge=1, le=1000)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, le=100_000)
    style: Style = "direct"
    system: str = ""
    template: str = ""
    personas: list[str] = Field(default_factory=list)
    instruction: str = Field("", description="said after the question instead of the style's own instruction")
    demos: list[Demo] = Field(default_factory=list, max_length=64,
                              description="worked examples shown first, as earlier turns of the chat")
    stop: Literal["never", "accepted", "settled"] = Field(
        "never", description="draw one sample at a time and stop at the first the next layer (test or verify) "
                             "accepts, or once the next layer's vote is settled; at most n either way")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="for stop: settled, P(leader beats runner-up)")

    @model_validator(mode="before")
    @classmethod
    def _fill_prompts(cls, data: Any) -> Any:
        """Freeze the full prompt text for the chosen style into the params."""
        if isinstance(data, dict):
            style = data.get("style", "direct")
            data = dict(data)
            if not data.get("template") and isinstance(data.get("instruction"), str) and data["instruction"]:
                data["template"] = "{question}\n\n" + data["instruction"]
            elif not data.get("template") and isinstance(style, str) and style in STYLE_TEMPLATES:
                data["template"] = STYLE_TEMPLATES[style]
            if style == "personas" and not data.get("personas"):
                data["personas"] = list(DEFAULT_PERSONAS)
        return data


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class Generate(Technique):
    kind = "generate"
    Params = GenerateParams
    appends_only = True

    def messages(self, question_text: str, sample_index: int) -> list[dict[str, str]]:
        p = self.params
        system = p.system
        if p.style == "personas":
            system = p.personas[sample_index % len(p.personas)]
        out = [{"role": "system", "content": system}] if system else []
        for demo in p.demos:
            out += [{"role": "user", "content": fill(p.template, question=demo.question)},
                    {"role": "assistant", "content": demo.answer}]
        return out + [{"role": "user", "content": fill(p.template, question=question_text)}]

    def describe(self) -> str:
        p = self.params
        stop = {"never": "", "accepted": " until accepted"}.get(p.stop, f" until settled at {p.confidence:g}")
        prompt = f" '{_short(p.instruction)}'" if p.instruction else ""
        demos = f" {len(p.demos)} demos" if p.demos else ""
        return f"generate {p.model} n={p.n} T={p.temperature:g}{prompt}{demos}{stop}"

    def calls(self, candidates: int) -> tuple[float, int]:
        return float(self.params.n), candidates + self.params.n

    def sample_key(self, model: ModelSpec, question_text: str, sample_index: int) -> str:
        """The cache key of sample ``sample_index`` of this generator for a question."""
        p = self.params
        return request_key(model, self.messages(question_text, sample_index), p.temperature, p.max_tokens, sample_index)

    async def sample(self, ctx: LayerContext, question, i: int) -> Candidate:
        p = self.params
        result = await ctx.complete(p.model, self.messages(question.text, i), temperature=p.temperature,
                                    max_tokens=p.max_tokens, sample_index=i)
        return ctx.candidate(result, p.model, self.kind, i)

    def indices(self, ctx: LayerContext) -> range:
        """This layer's sample indices for the question: a second layer with the same generator
        continues where the first stopped. Taken before any await: deterministic under concurrency."""
        return ctx.next_samples(self.identity(ctx.models[self.params.model]), self.params.n)

    def identity(self, model: ModelSpec) -> str:
        """What makes two generators draw the same samples: exactly what keys their calls (the model's
        id and public params, the messages' makings, temperature and max_tokens) -- not how many or
        when to stop, nor the style or instruction names the template was made from. The one recipe
        the runtime, the surrogate's plan and replay use. Computed once per model object."""
        memo = self.__dict__.get("_identity")
        if memo is None or memo[0] is not model:
            p = self.params
            makings = {"system": p.system, "template": p.template, "demos": [[d.question, d.answer] for d in p.demos],
                       "personas": p.personas if p.style == "personas" else [], "temperature": p.temperature,
                       "max_tokens": p.max_tokens}
            memo = (model, json.dumps([model_identity(model), makings], sort_keys=True))
            self._identity = memo
        return memo[1]

    async def apply(self, ctx: LayerContext, question, candidates: list[Candidate]) -> list[Candidate]:
        indices = self.indices(ctx)
        return candidates + list(await asyncio.gather(*(self.sample(ctx, question, i) for i in indices)))
