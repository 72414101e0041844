"""Test helpers for archsearch and its plugins (deterministic fake LLM, test servers)."""

from .arithmetic import NoisyArithmetic
from .fake_llm import FakeLLM
from .flaky import FlakyBackend

__all__ = ["FakeLLM", "FlakyBackend", "NoisyArithmetic"]
