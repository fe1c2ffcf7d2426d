"""The embedded `synthetic` corpus: an infinite, seeded token stream whose generating process is known,
so the Bayes-optimal loss on the validation stream can be computed exactly.

The process. Token 0 is the end-of-text marker (EOT). Every sequence starts with EOT, and each document
draws a latent topic z uniformly from K topics. Inside a document the next token follows a topic-specific
sparse Markov chain: from token u under topic z the successor is table[z, u, j], where the branch j is
drawn with weights proportional to 1/(j+1) and the table entries are drawn once from a Zipf distribution
over the vocabulary. After each in-document token the document ends with probability q (geometric
lengths, mean 1/q), emitting EOT; the next document draws a fresh topic.

Long-range structure: the topic is never observed, so a good model infers it from the whole document so
far. The Bayes-optimal predictor keeps the posterior over topics since the last EOT:
    p(v | context) = q                                    if v is EOT (u is not EOT)
                   = (1 - q) * sum_z post(z) * p_z(v | u) otherwise,
with p_z(v | u) = sum_j w_j [table[z, u, j] == v]. Every training sequence starts at a document start,
so the model's window always contains everything the optimal predictor conditions on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EOT = 0
_TABLE_STREAM = 0
_TRAIN_STREAM = 1
_VAL_STREAM = 2
_WARMUP_STREAM = 3


@dataclass(frozen=True)
class SyntheticSpec:
    vocab_size: int
    n_topics: int = 16
    branching: int = 8
    mean_doc_len: float = 256.0
    zipf_exponent: float = 1.1

    @classmethod
    def for_model(cls, vocab_size: int, seq_len: int) -> SyntheticSpec:
        # Scale with the model: small vocabularies get fewer topics, documents span about a quarter window.
        n_topics = 16 if vocab_size >= 4096 else 4
        branching = 8 if vocab_size >= 4096 else 4
        return cls(vocab_size, n_topics, branching, max(8.0, seq_len / 4))


class SyntheticProcess:
    """The generating process, its tables fixed by (spec, seed)."""

    # Its batches are computed (a Python loop over positions): generate them in a process of their own.
    generate_in_process = True

    def __init__(self, spec: SyntheticSpec, seed: int) -> None:
        if spec.vocab_size < 3:
            raise ValueError("synthetic corpus needs a vocabulary of at least 3 tokens")
        self.spec = spec
        self.seed = seed
        self.stop_prob = 1.0 / spec.mean_doc_len
        rng = np.random.default_rng([seed, _TABLE_STREAM])
        ranks = np.arange(1, spec.vocab_size, dtype=np.float64)
        zipf = ranks**-spec.zipf_exponent
        zipf_cdf = np.cumsum(zipf) / zipf.sum()
        shape = (spec.n_topics, spec.vocab_size, spec.branching)
        draws = np.searchsorted(zipf_cdf, rng.random(shape), side="right")
        self.table = (np.minimum(draws, spec.vocab_size - 2) + 1).astype(np.int32)  # never EOT
        weights = 1.0 / np.arange(1, spec.branching + 1)
        self.branch_weights = weights / weights.sum()
        self._branch_cdf = np.cumsum(self.branch_weights)
        self._branch_cdf[-1] = 1.0

    def describe(self) -> dict:
        return {"kind": "synthetic", **asdict(self.spec), "process_seed": self.seed}

    # ---- sampling ------------------------------------------------------------------------------------

    def sample(self, n_seqs: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """n_seqs sequences of `length` tokens, each starting at a document start (EOT)."""
        spec = self.spec
        steps = length - 1
        out = np.empty((length, n_seqs), dtype=np.int32)
        out[0] = EOT
        branch = np.searchsorted(self._branch_cdf, rng.random((steps, n_seqs)), side="right")
        stop = rng.random((steps, n_seqs)) < self.stop_prob
        new_topics = rng.integers(0, spec.n_topics, (steps, n_seqs))
        topic = rng.integers(0, spec.n_topics, n_seqs)
        prev = np.full(n_seqs, EOT, dtype=np.int64)
        flat = self.table.ravel()
        row_stride = spec.vocab_size * spec.branching
        for t in range(steps):
            nxt = flat[topic * row_stride + prev * spec.branching + branch[t]]
            ends = stop[t] & (prev != EOT)
            nxt[ends] = EOT
            topic = np.where(ends, new_topics[t], topic)
            out[t + 1] = nxt
            prev = nxt
        return np.ascontiguousarray(out.T)

    def batch(self, stream: int, index: int, n_seqs: int, length: int) -> np.ndarray:
        """Deterministic in (seed, stream, index): the data order is the same for every strategy."""
        return self.sample(n_seqs, length, np.random.default_rng([self.seed, stream, index]))

    def train_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray:
        return self.batch(_TRAIN_STREAM, index, n_seqs, length)

    def warmup_batch(self, index: int, n_seqs: int, length: int) -> np.ndarray:
        return self.batch(_WARMUP_STREAM, index, n_seqs, length)

    def val_tokens(self, n_seqs: int, length: int) -> np.ndarray:
        return self.batch(_VAL_STREAM, 0, n_seqs, length)

    # ---- the Bayes-optimal predictor -------------------------------------------------------------------

    def topic_likelihoods(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """p_z(nxt | prev) for every topic z: shape (n, K)."""
        candidates = self.table[:, prev, :]  # (K, n, b)
        hits = candidates == nxt[None, :, None]
        return (hits * self.branch_weights).sum(-1).T

    def optimal_nll(self, tokens: np.ndarray) -> np.ndarray:
        """Per-target negative log-likelihood of the Bayes-optimal predictor: shape (n, length - 1).

        Targets are tokens[:, 1:], each conditioned on everything before it in its sequence.
        """
        tokens = np.asarray(tokens, dtype=np.int64)
        n, length = tokens.shape
        k = self.spec.n_topics
        log_prior = np.full((n, k), -np.log(k))
        log_post = log_prior.copy()
        nll = np.empty((n, length - 1))
        log_q, log_continue = np.log(self.stop_prob), np.log1p(-self.stop_prob)
        with np.errstate(divide="ignore", invalid="ignore"):  # -inf for impossible topics
            for t in range(length - 1):
                prev, nxt = tokens[:, t], tokens[:, t + 1]
                at_start = prev == EOT
                log_post[at_start] = log_prior[at_start]
                log_lik = np.log(self.topic_likelihoods(prev, nxt))
                joint = log_post + log_lik
                peak = joint.max(axis=1, keepdims=True)
                safe_peak = np.where(np.isfinite(peak), peak, 0.0)
                log_mix = (safe_peak + np.log(np.exp(joint - safe_peak).sum(axis=1, keepdims=True)))[:, 0]
                log_p = np.where(at_start, log_mix, log_continue + log_mix)
                log_p = np.where(nxt == EOT, np.where(at_start, -np.inf, log_q), log_p)
                nll[:, t] = -log_p
                # Condition the posterior on the new token (EOT carries no topic evidence).
                updated = joint - log_mix[:, None]
                log_post = np.where((nxt == EOT)[:, None], log_post, updated)
        return nll

    def bayes_loss(self, tokens: np.ndarray) -> float:
        """Mean Bayes-optimal cross-entropy (nats/token) over tokens[:, 1:]: the floor no model can beat."""
        return float(self.optimal_nll(tokens).mean())

    def floor_loss(self, val_tokens: np.ndarray) -> float | None:
        return self.bayes_loss(val_tokens)
