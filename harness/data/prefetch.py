"""Background batch production, so generating or reading tokens overlaps with training."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np
import torch


class Prefetcher:
    """Produces make_batch(start), make_batch(start + 1), ... on a thread, `depth` batches ahead.

    Records how long producing took (the source's own throughput) and how long the consumer waited
    (time the training loop lost to data, which should stay near zero).
    """

    def __init__(self, make_batch: Callable[[int], np.ndarray], start: int, *, pin: bool, depth: int = 2):
        self._make = make_batch
        self._next = start
        self._pin = pin
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.produce_s = 0.0
        self.produced_tokens = 0
        self.wait_s = 0.0
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index = self._next
        while not self._stop.is_set():
            try:
                t0 = time.perf_counter()
                tokens = torch.from_numpy(self._make(index).astype(np.int64, copy=False))
                if self._pin:
                    tokens = tokens.pin_memory()
                self.produce_s += time.perf_counter() - t0
                self.produced_tokens += tokens.numel()
                item: object = (index, tokens)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return
            index += 1

    def next(self) -> tuple[int, torch.Tensor]:
        t0 = time.perf_counter()
        item = self._queue.get()
        self.wait_s += time.perf_counter() - t0
        if isinstance(item, BaseException):
            raise item
        return item

    @property
    def tokens_per_s(self) -> float | None:
        return self.produced_tokens / self.produce_s if self.produce_s > 0 else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
