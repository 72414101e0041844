"""What this process may still open: memory maps, of which every compiled XLA program keeps some."""

from __future__ import annotations

from pathlib import Path

import jax

# a NUTS fit keeps about 2,600 (NumPyro 0.22 compiles MCMC's loop anew on every run; bayes/MODEL.md, "Fit")
NUTS_MEMORY_MAPS = 10_000


def memory_maps_left(limit_file: str = "/proc/sys/vm/max_map_count", maps_file: str = "/proc/self/maps") -> int | None:
    """How many more memory maps the kernel lets this process open (Linux); None where it cannot say.
    Past the limit, the next compile's allocation fails and XLA aborts the whole process."""
    try:
        limit = int(Path(limit_file).read_text())
        with open(maps_file) as maps:
            used = sum(1 for _ in maps)
    except (OSError, ValueError):
        return None
    return limit - used


def release_compiled_code() -> None:
    """Drop every program JAX has compiled in this process, and the memory maps they keep. For a process
    that fits NUTS again and again (a calibration, a benchmark per split): NumPyro compiles NUTS's loop
    anew on every run, so without this each fit adds ~2,600 maps until the guard above turns NUTS into
    SVI (bayes/MODEL.md, "Fit"). A fit after it compiles everything again (or reads JAX's disk cache)."""
    jax.clear_caches()
