"""CUDA graph replay of the torch backend's ``attend``: one captured graph per relation count R.

On a GPU the relation forward is a few hundred tiny kernels, so eager PyTorch spends its time launching them
(about 1.5-2.5 ms on an H200 whatever R is); replaying a captured graph launches them all at once (about 0.3 ms,
``benchmarks/reports/gpu_h200.md``). Graphs have static inputs: the region embedding lives in one device buffer
that every graph reads, and each R has its own query-id buffer. At most ``capacity`` graphs are kept (least
recently used first out); R above ``max_relations`` runs eagerly.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

MAX_RELATIONS = 256
CAPACITY = 16


class GraphedAttend:
    """``attend(emb, ids)`` through per-R CUDA graphs; callers hold ``lock`` from ``load`` to reading the outputs."""

    def __init__(self, torch: Any, fn: Callable[[Any, Any], tuple], emb_shape: tuple[int, ...], *,
                 capacity: int = CAPACITY, max_relations: int = MAX_RELATIONS) -> None:
        self._torch, self._fn = torch, fn
        self.capacity, self.max_relations = capacity, max_relations
        self.static_emb = torch.zeros(emb_shape, dtype=torch.float32, device="cuda")
        self.loaded: object | None = None  # the host array (or tensor) whose values static_emb holds
        self._graphs: OrderedDict[int, tuple[Any, Any, tuple]] = OrderedDict()
        self.lock = threading.Lock()
        self.captures = 0

    def accepts(self, num_relations: int) -> bool:
        return 1 <= num_relations <= self.max_relations

    def load(self, source: object, emb: Any) -> None:
        """Copy the embedding ``emb`` (a CUDA tensor) into the graphs' input buffer unless ``source`` is loaded."""
        if source is not self.loaded or source is None:
            self.static_emb.copy_(emb)
            self.loaded = source

    def __call__(self, ids: Any) -> tuple:
        """Outputs of attend(static_emb, ids), valid until the next call (read them while holding ``lock``)."""
        r = int(ids.shape[0])
        entry = self._graphs.get(r)
        if entry is None:
            entry = self._capture(ids)
            self._graphs[r] = entry
            while len(self._graphs) > self.capacity:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(r)
        graph, static_ids, outputs = entry
        static_ids.copy_(ids)
        graph.replay()
        return outputs

    def _capture(self, ids: Any) -> tuple[Any, Any, tuple]:
        torch = self._torch
        static_ids = ids.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture stream (allocator and cuBLAS workspaces)
            for _ in range(2):
                self._fn(self.static_emb, static_ids)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self._fn(self.static_emb, static_ids)
        self.captures += 1
        return graph, static_ids, tuple(outputs)
