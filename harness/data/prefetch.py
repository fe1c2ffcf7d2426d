"""Background batch production, so generating or reading tokens overlaps with training: in a process of
its own for sources that compute their tokens (the synthetic generator's Python loop would otherwise share
the training loop's interpreter lock), on a thread for sources that read them (memory-mapped shards)."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing import shared_memory

import numpy as np
import torch

from harness.data.base import TokenSource


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


class ProcessPrefetcher:
    """Produces source.train_batch(start), (start + 1), ... in a separate process, `depth` batches ahead,
    through shared memory. The same batches as `Prefetcher`, the same figures: produce_s is the producer's
    own time, wait_s the time the training loop waited."""

    def __init__(
        self, source: TokenSource, n_seqs: int, length: int, start: int, *, pin: bool, depth: int = 3
    ):
        from harness.data.producer import produce

        self._pin, self._shape = pin, (n_seqs, length)
        self._shm = shared_memory.SharedMemory(create=True, size=depth * n_seqs * length * 8)
        self._slots = np.ndarray((depth, n_seqs, length), dtype=np.int64, buffer=self._shm.buf)
        ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold CUDA state
        self._free, self._ready, self._stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        for slot in range(depth):
            self._free.put(slot)
        args = (source, (depth, n_seqs, length), start, self._shm.name, self._free, self._ready, self._stop)
        self._process = ctx.Process(target=produce, args=args, name="harness-data", daemon=True)
        self._process.start()
        self.produce_s, self.produced_tokens, self.wait_s = 0.0, 0, 0.0

    def next(self) -> tuple[int, torch.Tensor]:
        t0 = time.perf_counter()
        while True:
            try:
                index, slot, seconds = self._ready.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(
                        f"the data process died (exit code {self._process.exitcode})"
                    ) from None
        self.wait_s += time.perf_counter() - t0
        if index == "error":
            raise RuntimeError(f"the data process failed:\n{slot}")
        tokens = torch.from_numpy(self._slots[slot].copy())
        self._free.put(slot)
        self.produce_s += seconds
        self.produced_tokens += tokens.numel()
        return index, tokens.pin_memory() if self._pin else tokens

    @property
    def tokens_per_s(self) -> float | None:
        return self.produced_tokens / self.produce_s if self.produce_s > 0 else None

    def close(self) -> None:
        if self._shm is None:
            return
        self._stop.set()
        self._process.join(timeout=5)
        if self._process.is_alive():  # SIGTERM would only set its stop flag (the worker's handler)
            self._process.kill()
            self._process.join(timeout=5)
        del self._slots
        self._shm.close()
        self._shm.unlink()
        self._shm = None


def prefetcher_for(source: TokenSource, n_seqs: int, length: int, start: int, *, pin: bool):
    """A process for sources that generate their tokens (they say so), a thread for those that read them."""
    if getattr(source, "generate_in_process", False):
        return ProcessPrefetcher(source, n_seqs, length, start, pin=pin)
    return Prefetcher(lambda i: source.train_batch(i, n_seqs, length), start=start, pin=pin)
