"""The batch producer that runs in its own process (no torch here): it calls the token source by index and
writes each batch into a slot of shared memory, so that generating data never holds the training
process's interpreter lock."""

from __future__ import annotations

import os
import queue
import time
import traceback
from multiprocessing import shared_memory

import numpy as np


def produce(source, shape: tuple[int, int, int], start: int, shm_name: str, free, ready, stop) -> None:
    """Fill free slots with batches start, start + 1, ...; report (index, slot, seconds) on `ready`.
    Ends when asked, or when the process that started it is gone."""
    parent = os.getppid()
    shm = shared_memory.SharedMemory(name=shm_name)
    try:
        slots = np.ndarray(shape, dtype=np.int64, buffer=shm.buf)  # (depth, sequences, length)
        _, n_seqs, length = shape
        index = start
        while not stop.is_set() and os.getppid() == parent:
            try:
                slot = free.get(timeout=0.2)
            except queue.Empty:
                continue
            t0 = time.perf_counter()
            slots[slot] = source.train_batch(index, n_seqs, length)
            ready.put((index, slot, time.perf_counter() - t0))
            index += 1
    except BaseException:
        ready.put(("error", traceback.format_exc(limit=8), 0.0))
    finally:
        slots = None  # the view must go before the memory is closed
        shm.close()
