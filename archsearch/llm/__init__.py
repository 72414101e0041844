from .budget import Budget
from .cache import CallCache, call_key
from .client import ClientStats, LLMClient
from .types import Backend, CallResult, Completion, RetryableError

__all__ = ["Backend", "Budget", "CallCache", "CallResult", "ClientStats", "Completion", "LLMClient",
           "RetryableError", "call_key"]
