"""Batch producers: the same batches, in order, whether made on a thread or in a process of their own."""

import numpy as np
import pytest

from harness.data.prefetch import Prefetcher, ProcessPrefetcher, prefetcher_for
from harness.data.synthetic import SyntheticProcess, SyntheticSpec


class Failing:
    def train_batch(self, index, n_seqs, length):
        if index == 2:
            raise ValueError("corpus shard vanished")
        return np.full((n_seqs, length), index, dtype=np.int64)


def synthetic():
    return SyntheticProcess(SyntheticSpec.for_model(512, 64), seed=7)


def test_the_process_producer_gives_the_sources_batches_in_order_from_any_start():
    source = synthetic()
    producer = ProcessPrefetcher(source, 8, 65, start=5, pin=False)
    try:
        for index in range(5, 12):
            got_index, tokens = producer.next()
            assert got_index == index
            assert np.array_equal(tokens.numpy(), source.train_batch(index, 8, 65))
        assert producer.produced_tokens == 7 * 8 * 65 and producer.produce_s > 0 and producer.wait_s >= 0
    finally:
        producer.close()
    producer.close()  # idempotent


def test_a_failing_source_fails_the_consumer_with_its_reason():
    producer = ProcessPrefetcher(Failing(), 2, 3, start=0, pin=False)
    try:
        assert producer.next()[0] == 0 and producer.next()[0] == 1
        with pytest.raises(RuntimeError, match="corpus shard vanished"):
            producer.next()
    finally:
        producer.close()


@pytest.mark.serial
def test_a_dead_producer_is_noticed():
    producer = ProcessPrefetcher(synthetic(), 2, 65, start=0, pin=False)
    try:
        producer.next()
        producer._process.kill()
        producer._process.join()
        with pytest.raises(RuntimeError, match="data process died"):
            for _ in range(10):  # the slots already filled may still come first
                producer.next()
    finally:
        producer.close()


def test_generated_data_goes_to_a_process_and_read_data_to_a_thread():
    process = prefetcher_for(synthetic(), 2, 65, 0, pin=False)
    thread = prefetcher_for(Failing(), 2, 3, 0, pin=False)
    try:
        assert isinstance(process, ProcessPrefetcher) and isinstance(thread, Prefetcher)
        assert np.array_equal(process.next()[1].numpy(), synthetic().train_batch(0, 2, 65))
    finally:
        process.close()
        thread.close()
