from .base import Candidate, LayerContext, LayerTrace, Technique

__all__ = ["Candidate", "LayerContext", "LayerTrace", "Technique"]
