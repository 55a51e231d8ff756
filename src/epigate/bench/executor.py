"""How cells are run: a small executor interface, in-process by default.

A distributed backend only needs ``map(fn, items)`` yielding ``(item, result)`` pairs as they
finish; the experiment code (``runner.run_cell``) does not change.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]: ...


class InProcessExecutor:
    """Runs cells one after another in this process (each already uses every core through XLA)."""

    def map(self, fn, items):
        for item in items:
            yield item, fn(item)
