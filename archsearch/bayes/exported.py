"""Compiled functions kept on disk already traced (``jax.export``), beside JAX's cache of compiled
code, so that a new process loads them instead of tracing the model, guide and optimiser again:
tracing was 2.7 s of the 6-s first SVI fit of every search (JAX's own cache serves only the
compiled code, and only after tracing). A stored function runs the same computation: fits are
bit for bit those of the traced functions (``tests/test_bayes.py``).

A stored function is named by what could change it: the sources of the code it runs, this file,
the versions of jax, jaxlib and numpyro, and its arguments' structure, shapes and types.
An entry that cannot be read is traced and written again.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from jax import export

FOLDER = "exported"   # under JAX's compilation cache folder


def stored(folder: str | Path, name: str, fn: Callable, args: tuple, sources: tuple[str, ...]) -> export.Exported:
    """``fn`` (a jitted function) exported for ``args``' shapes: read from ``folder`` if there, else
    traced once and written there. ``sources``: the files of the code ``fn`` runs (an edit to one
    names a new entry)."""
    leaves, structure = jax.tree_util.tree_flatten(args)
    avals = [(np.shape(x), str(getattr(x, "dtype", None) or np.asarray(x).dtype)) for x in leaves]
    key = hashlib.sha256(repr((_digest(sources), name, str(structure), avals)).encode()).hexdigest()[:40]
    path = Path(folder) / FOLDER / f"{name}-{key}.bin"
    if path.exists():
        try:
            return export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # noqa: BLE001 - a damaged cache entry is traced and written again
            pass
    exported = export.export(fn)(*args)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        partial.write_bytes(exported.serialize())
        os.replace(partial, path)   # whole or absent: two searches may write the same entry
    except OSError:   # a folder this process cannot write to: the next process traces again, as JAX's cache would
        pass
    return exported


def compile_exported(exported: export.Exported, args: tuple) -> Callable:
    """``exported`` compiled for ``args`` now (or its code read from JAX's cache on disk), so that a
    caller can do it in a thread of its own; tracing stays with the caller."""
    return jax.jit(exported.call).lower(*args).compile()


@functools.lru_cache(maxsize=8)
def _digest(sources: tuple[str, ...]) -> str:
    """What a stored function's computation depends on beyond its arguments: its sources, this
    file, and the versions of jax, jaxlib and numpyro."""
    import jaxlib
    import numpyro

    digest = hashlib.sha256()
    for source in (*sources, __file__):
        digest.update(Path(source).read_bytes())
    digest.update(f"{jax.__version__} {jaxlib.__version__} {numpyro.__version__}".encode())
    return digest.hexdigest()
