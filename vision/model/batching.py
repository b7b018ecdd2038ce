"""Dynamic batching: forward passes requested together by several threads run as one.

A worker running several tasks at once (a thread pool) hands each task's preprocessed cells to
one batcher; the batcher waits at most ``max_wait`` seconds for more requests, up to
``max_batch`` rows, then runs a single forward pass and gives every caller its own rows back.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import torch

Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass
class _Request:
    batch: torch.Tensor
    result: Future[tuple[torch.Tensor, torch.Tensor | None]]


class DynamicBatcher:
    def __init__(self, forward: Forward, max_batch: int = 32, max_wait: float = 0.005) -> None:
        self._forward = forward
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self.batches_run = 0
        self.rows_run = 0
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dynamic-batcher")
        self._thread.start()

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        request = _Request(batch, Future())
        self._requests.put(request)
        return request.result.result()

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=5)

    def _gather(self, first: _Request) -> list[_Request]:
        requests, rows = [first], len(first.batch)
        deadline = time.monotonic() + self.max_wait
        while rows < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                request = self._requests.get(timeout=remaining) if remaining > 0 \
                    else self._requests.get_nowait()
            except queue.Empty:
                break
            if request is None:
                self._requests.put(None)  # stop after serving what was gathered
                break
            requests.append(request)
            rows += len(request.batch)
        return requests

    def _loop(self) -> None:
        while (first := self._requests.get()) is not None:
            requests = self._gather(first)
            try:
                probs, ood = self._forward(torch.cat([r.batch for r in requests]))
            except Exception as exc:  # every waiting caller gets the failure, none hangs
                for request in requests:
                    request.result.set_exception(exc)
                continue
            self.batches_run += 1
            self.rows_run += len(probs)
            start = 0
            for request in requests:
                end = start + len(request.batch)
                request.result.set_result(
                    (probs[start:end], None if ood is None else ood[start:end]))
                start = end
