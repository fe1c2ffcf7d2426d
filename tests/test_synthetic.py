import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.data.synthetic import EOT, SyntheticProcess, SyntheticSpec


@pytest.fixture(scope="module")
def process():
    return SyntheticProcess(SyntheticSpec(vocab_size=40, n_topics=3, branching=3, mean_doc_len=12.0), seed=5)


def oracle_distributions(proc: SyntheticProcess, seq: np.ndarray) -> np.ndarray:
    """An independent oracle: the full next-token distribution at each position, by explicit Bayes."""
    k, v = proc.spec.n_topics, proc.spec.vocab_size
    q = 1.0 / proc.spec.mean_doc_len
    posterior = None
    out = []
    for t in range(len(seq) - 1):
        u = seq[t]
        if u == EOT:
            posterior = np.full(k, 1.0 / k)
        per_topic = np.zeros((k, v))
        for z in range(k):
            for j in range(proc.spec.branching):
                per_topic[z, proc.table[z, u, j]] += proc.branch_weights[j]
        mixture = posterior @ per_topic
        if u == EOT:
            dist = mixture
        else:
            dist = (1 - q) * mixture
            dist[EOT] += q
        out.append(dist)
        nxt = seq[t + 1]
        if nxt != EOT:
            posterior = posterior * per_topic[:, nxt]
            posterior /= posterior.sum()
    return np.array(out)


def test_oracle_that_knows_the_process_scores_the_floor(process):
    tokens = process.val_tokens(6, 50)
    nll = process.optimal_nll(tokens)
    for row, seq in enumerate(tokens):
        dists = oracle_distributions(process, seq)
        np.testing.assert_allclose(dists.sum(axis=1), 1.0, atol=1e-12)
        oracle_nll = -np.log(dists[np.arange(len(seq) - 1), seq[1:]])
        np.testing.assert_allclose(nll[row], oracle_nll, rtol=1e-9, atol=1e-9)
    # Scored as a model would be: oracle log-probabilities as logits through the same cross-entropy.
    with np.errstate(divide="ignore"):
        logits = torch.tensor(np.log(np.stack([oracle_distributions(process, s) for s in tokens])))
    ce = F.cross_entropy(logits.reshape(-1, 40), torch.tensor(tokens[:, 1:]).long().reshape(-1))
    assert ce.item() == pytest.approx(process.bayes_loss(tokens), rel=1e-9)


def test_uniform_predictor_scores_log_v_and_the_floor_is_below(process):
    tokens = process.val_tokens(8, 50)
    uniform = torch.zeros(8 * 49, 40)
    ce = F.cross_entropy(uniform, torch.tensor(tokens[:, 1:]).long().reshape(-1))
    assert ce.item() == pytest.approx(math.log(40), rel=1e-6)
    assert process.bayes_loss(tokens) < math.log(40) - 0.5


def test_samples_follow_the_distributions_the_floor_assumes(process):
    # Gibbs: E[-log p(x)] equals the mean entropy only if x is drawn from p. A sampler that disagreed with
    # the probabilities behind the floor would score above the mean entropy.
    tokens = process.val_tokens(80, 40)
    nll, entropies = [], []
    for seq in tokens:
        dists = oracle_distributions(process, seq)
        nll.extend(-np.log(dists[np.arange(len(seq) - 1), seq[1:]]))
        entropies.extend(-(np.where(dists > 0, dists * np.log(np.where(dists > 0, dists, 1)), 0)).sum(axis=1))
    nll, entropies = np.array(nll), np.array(entropies)
    stderr = (nll - entropies).std() / math.sqrt(len(nll))
    assert abs(nll.mean() - entropies.mean()) < 4 * stderr


def test_stream_is_seeded_and_starts_documents(process):
    a = process.train_batch(3, 4, 30)
    assert np.array_equal(a, process.train_batch(3, 4, 30))
    assert not np.array_equal(a, process.train_batch(4, 4, 30))
    assert not np.array_equal(a, process.val_tokens(4, 30))
    assert (a[:, 0] == EOT).all()
    assert (a >= 0).all() and (a < 40).all()
    other = SyntheticProcess(process.spec, seed=6)
    assert not np.array_equal(a, other.train_batch(3, 4, 30))
    # No empty documents: EOT is never followed by EOT.
    assert not ((a[:, :-1] == EOT) & (a[:, 1:] == EOT)).any()


def test_documents_have_the_declared_mean_length():
    proc = SyntheticProcess(SyntheticSpec(vocab_size=100, mean_doc_len=20.0), seed=1)
    tokens = proc.train_batch(0, 64, 2001)
    boundaries = (tokens[:, 1:] == EOT).sum()
    in_doc_tokens = tokens[:, 1:].size - boundaries
    # Each in-document token (after the first of a document) ends it with probability 1/20.
    assert in_doc_tokens / boundaries == pytest.approx(20.0, rel=0.1)
