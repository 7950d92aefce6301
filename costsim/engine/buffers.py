"""Reusable work arrays for the per-node evaluation.

The analytic engine walks a strategy's node ladders in blocks of ~1 MiB arrays (about ten per
block) and drops them before the next block. Freed, such arrays go back to the operating
system and the next block's arrays are faulted in page by page: measured on the large
comparison of issue 13, ~190 page faults per block and a quarter of the evaluation's time.
A :class:`Workspace` hands out the same arrays again instead. One workspace per evaluation
(never shared between threads); an array it hands out is overwritten by the next block, so
whoever takes one uses it before asking for the next block.
"""

from __future__ import annotations

import math

import numpy as np


class Workspace:
    """Named arrays, reused while the requested shape stays the same."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised float array of ``shape`` (the same memory as the last request of
        ``name`` when it fits)."""
        a = self._arrays.get(name)
        size = math.prod(shape)
        if a is None or a.size < size:
            a = self._arrays[name] = np.empty(size)
        return a[:size].reshape(shape)

    def like_nodes(self, name: str, like: np.ndarray) -> np.ndarray:
        """An array shaped like the node block view ``like`` (``[c, Q, P, K]``) and stored like
        it, node axis last (or C order when ``like`` is not)."""
        if like.ndim == 4 and like.strides[1] == like.itemsize and like.strides[0] != 0:
            c, q, p, k = like.shape
            return self.get(name, (c, p, k, q)).transpose(0, 3, 1, 2)   # [c, Q, P, K] view
        return self.get(name, like.shape)


def empty_like_nodes(work: Workspace | None, name: str, like: np.ndarray) -> np.ndarray:
    """``work.like_nodes(name, like)``, or a fresh array in ``like``'s layout without one."""
    if work is None:
        return np.empty_like(like)
    return work.like_nodes(name, like)
