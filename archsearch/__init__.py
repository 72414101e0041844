"""archsearch: find the best inference-time architecture for an LLM task and freeze it."""

import os as _os

# litellm fetches its price map from the internet at import unless told otherwise.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from .errors import ArchsearchError, SpecError  # noqa: E402
from .pipeline import Pipeline, Result, load  # noqa: E402
from .spec import PipelineSpec, dump_spec, load_spec  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ArchsearchError", "Pipeline", "PipelineSpec", "Result", "SpecError", "__version__", "dump_spec",
           "load", "load_spec"]
