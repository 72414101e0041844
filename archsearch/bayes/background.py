"""One job at a time in a background thread, whose result a later caller waits for: a search's cold
refit (``fit.Surrogate``) runs while the search goes on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BackgroundJob:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stop = threading.Event()   # set by ``discard``: a job that checks it ends early
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[Any, Future] | None = None
        self._fresh = False   # submitted since the last ``due``

    def submit(self, key: Any, job: Callable[[], Any]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        self._pending, self._fresh = (key, self._pool.submit(job)), True

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def due(self) -> tuple[Any, Any] | None:
        """``wait``, but a job submitted since the last call is left running once: the caller right
        after a submission goes on without it, the one after that waits (whatever the timing)."""
        if self._fresh:
            self._fresh = False
            return None
        return self.wait()

    def wait(self) -> tuple[Any, Any] | None:
        """``(key, result)`` of the job submitted last, once it is done; None when there is none."""
        if self._pending is None:
            return None
        key, future = self._pending
        self._pending, self._fresh = None, False
        return key, future.result()

    def discard(self) -> None:
        """End the job nobody will wait for, as soon as it checks ``stop``."""
        if self._pending is not None:
            self.stop.set()
            self.wait()
            self.stop.clear()
