"""Sampling UnigramLM tokenizers from text: the training distribution of the hypernetwork.

ZeTT (Minixhofer, Ponti & Vulić 2024, §3.2 "Defining distributions over texts and tokenizers") trains the
hypernetwork on a stream of tokenizers sampled from the text it is trained on, so that it sees
vocabularies of every kind of granularity and language mix:

1. The texts of the current batch (plus a rolling cache of the last few batches, for a larger sample)
   are pre-tokenized, and every substring of every pretoken up to ``max_piece_length`` bytes is counted.
   A substring's score is its frequency times its length in bytes (reference: ``rust_utils/src/lib.rs``,
   ``score = freq * token.len()``), normalised to a distribution ``p``.
2. The scores are perturbed with Gaussian noise whose standard deviation is itself random,
   ``sigma ~ LogNormal(log(noise_mean), noise_sigma)``, and clipped: ``log(max(p + N(0, sigma²), 0))``.
   Small sigma gives a tokenizer close to the frequency ranking, large sigma a nearly random vocabulary.
3. The top-k perturbed substrings (k = vocabulary size minus the byte alphabet and the special tokens)
   become the pieces of a UnigramLM (Kudo 2018) whose log-probabilities are the perturbed scores. All 256
   bytes are always in the vocabulary (score = the smallest observed), so any text tokenizes losslessly.

Work is done in the GPT-2 byte alphabet (`bytes_form.bytes_to_unicode`): one character per byte, so
"length" is bytes, and pieces may end inside a UTF-8 character (byte-level BPE vocabularies hold such
pieces too). Substrings start at character boundaries of the original text, as in the reference.

Differences from the reference, on purpose: every character boundary is a start (the reference takes
every 4th, a speed trade-off we do not need: counting runs over *unique* pretokens weighted by their
counts); no extra whitespace-run pieces; no prefix space (our bits-per-byte protocol adds none).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Iterable, Sequence

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers

from zett_jax.errors import ZettError
from zett_jax.tokenizers.bytes_form import bytes_to_unicode
from zett_jax.tokenizers.core import LoadedTokenizer

# The reference's pre-tokenization (zett/utils.py SPLIT_REGEX, GPT-2's with combining marks in words).
SPLIT_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}\p{M}]+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# Bytes 0x80-0xBF continue a UTF-8 character: no substring starts there.
_CONTINUATION = frozenset(bytes_to_unicode()[b] for b in range(0x80, 0xC0))
_UNREACHABLE = -1e5  # log-score of a piece whose perturbed probability fell to zero or below


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Tokenizer distribution (ZeTT §3.2). Defaults follow the reference's multilingual/en+code configs
    (``tokenizer_noise_mean=1e-5``, ``tokenizer_noise_std=4``, ``hn_surface_maxlen``/max length 16)."""

    vocab_size: int = 8192  # total, including the byte alphabet and the base model's special tokens
    max_piece_length: int = 16  # bytes
    noise_mean: float = 1e-5  # median of the noise scale sigma; 0 disables the noise
    noise_sigma: float = 4.0  # sigma of log(sigma)
    cache_batches: int = 4  # substring counts of this many recent batches are pooled

    def __post_init__(self):
        if self.max_piece_length < 2:
            raise ZettError(f"sampler.max_piece_length must be at least 2, got {self.max_piece_length}")
        if self.noise_mean < 0 or self.noise_sigma < 0:
            raise ZettError("sampler.noise_mean and sampler.noise_sigma must be >= 0")
        if self.cache_batches < 1:
            raise ZettError(f"sampler.cache_batches must be at least 1, got {self.cache_batches}")
        if self.vocab_size < 256 + 8:
            raise ZettError(f"sampler.vocab_size must exceed the 256-byte alphabet, got {self.vocab_size}")


def byte_level_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Regex split, then the GPT-2 byte alphabet (no prefix space, no second regex)."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(SPLIT_REGEX), "removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def pretoken_counts(texts: Iterable[str], pre_tokenizer=None) -> collections.Counter:
    """How often each byte-level pretoken occurs in ``texts``."""
    pre_tokenizer = pre_tokenizer or byte_level_pre_tokenizer()
    counts: collections.Counter = collections.Counter()
    for text in texts:
        counts.update(p for p, _ in pre_tokenizer.pre_tokenize_str(text))
    return counts


def substring_scores(counts: collections.Counter, max_length: int) -> dict[str, int]:
    """frequency x length (bytes) of every substring (length >= 2) of the pretokens, summed.

    Runs over unique pretokens, each weighted by its count, so a frequent word costs what a rare one does.
    """
    scores: dict[str, int] = collections.defaultdict(int)
    for pretoken, n in counts.items():
        L = len(pretoken)
        for i in range(L):
            if pretoken[i] in _CONTINUATION:
                continue
            for j in range(i + 2, min(i + max_length, L) + 1):
                scores[pretoken[i:j]] += n * (j - i)
    return scores


class SubstringCache:
    """Pooled substring scores of the last ``size`` batches (the reference's rolling ``seed_cache``)."""

    def __init__(self, size: int):
        self.size = size
        self._batches: collections.deque[dict[str, int]] = collections.deque()
        self.total: dict[str, int] = collections.defaultdict(int)

    def push(self, scores: dict[str, int]) -> None:
        self._batches.append(scores)
        for k, v in scores.items():
            self.total[k] += v
        if len(self._batches) > self.size:
            for k, v in self._batches.popleft().items():
                left = self.total[k] - v
                if left:
                    self.total[k] = left
                else:
                    del self.total[k]


def sample_pieces(
    total: dict[str, int], num_pieces: int, cfg: SamplerConfig, rng: np.random.Generator
) -> tuple[list[str], np.ndarray, float]:
    """Top ``num_pieces`` substrings by perturbed probability: (pieces, log-scores, min log-prob).

    ZeTT §3.2: ``s' = log(p + N(0, sigma²))``, ``sigma ~ LogNormal(log noise_mean, noise_sigma)``.
    """
    if len(total) < num_pieces:  # (num_pieces may include a few spares, see TokenizerSampler.sample)
        raise ZettError(
            f"the text sample holds only {len(total)} distinct multi-byte substrings, too few for a "
            f"sampled vocabulary of {cfg.vocab_size} tokens; use more or longer texts per batch, a larger "
            f"sampler.cache_batches or a smaller sampler.vocab_size"
        )
    # Sorted: the cache's insertion order depends on its history, and a resumed run (which rebuilt the
    # cache) must draw the same noise for the same substring.
    keys = sorted(total)
    score_N = np.fromiter((total[k] for k in keys), dtype=np.float64, count=len(keys))
    p_N = score_N / score_N.sum()
    if cfg.noise_mean > 0:
        sigma = rng.lognormal(np.log(cfg.noise_mean), cfg.noise_sigma)
        p_N = p_N + rng.normal(0.0, sigma, size=p_N.shape)
    logp_N = np.where(p_N > 0, np.log(np.maximum(p_N, 1e-300)), _UNREACHABLE)
    top = np.argpartition(-logp_N, num_pieces - 1)[:num_pieces]
    top = top[np.argsort(-logp_N[top], kind="stable")]
    min_logp = float(np.log(score_N.min() / score_N.sum()))
    return [keys[i] for i in top], logp_N[top], min_logp


def build_unigram(
    pieces: Sequence[str], scores: Sequence[float], alphabet_score: float, base: LoadedTokenizer, name: str = ""
) -> LoadedTokenizer:
    """A byte-level UnigramLM: ``[base specials] + [256 bytes] + pieces``, specials at the same roles.

    Special tokens come first and are registered as special added tokens, so they are never split and
    `bytes_form.token_bytes` maps them to None; their roles mirror the base tokenizer's.
    """
    specials = _special_tokens(base)
    alphabet = [bytes_to_unicode()[b] for b in range(256)]
    vocab = [(s, 0.0) for s in specials] + [(c, alphabet_score) for c in alphabet]
    vocab += [(p, float(s)) for p, s in zip(pieces, scores)]
    tok = tokenizers.Tokenizer(models.Unigram(vocab, unk_id=None, byte_fallback=False))
    tok.pre_tokenizer = byte_level_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    ids = {s: i for i, s in enumerate(specials)}
    role = lambda i: None if i is None else ids[base.tokenizer.id_to_token(i)]  # noqa: E731
    return LoadedTokenizer(
        tok, bos_id=role(base.bos_id), eos_id=role(base.eos_id), pad_id=role(base.pad_id),
        unk_id=role(base.unk_id), add_bos=base.add_bos, name=name or "sampled-unigram",
    )


def _special_tokens(base: LoadedTokenizer) -> list[str]:
    """The base's role tokens (bos, eos, pad, unk), each once, in that order."""
    out: list[str] = []
    for i in (base.bos_id, base.eos_id, base.pad_id, base.unk_id):
        if i is not None:
            t = base.tokenizer.id_to_token(i)
            if t not in out:
                out.append(t)
    return out


class TokenizerSampler:
    """Samples one tokenizer per text batch from the pooled substrings of the recent batches.

    Deterministic given the batch sequence and the generator: replaying the last ``cache_batches - 1``
    batches with :meth:`observe` restores the cache exactly (what a resumed run does).
    """

    def __init__(self, base: LoadedTokenizer, cfg: SamplerConfig):
        self.base = base
        self.cfg = cfg
        self.cache = SubstringCache(cfg.cache_batches)
        self._pre = byte_level_pre_tokenizer()
        self.num_pieces = cfg.vocab_size - 256 - len(_special_tokens(base))

    def observe(self, texts: Sequence[str]) -> None:
        """Add a batch's substrings to the rolling cache."""
        self.cache.push(substring_scores(pretoken_counts(texts, self._pre), self.cfg.max_piece_length))

    def sample(self, texts: Sequence[str], rng: np.random.Generator) -> LoadedTokenizer:
        """Observe ``texts``, then draw a tokenizer of exactly ``cfg.vocab_size`` tokens."""
        self.observe(texts)
        specials = set(_special_tokens(self.base))
        extra = len(specials)  # a text may contain a special token's spelling: never a second piece
        pieces, scores, min_logp = sample_pieces(self.cache.total, self.num_pieces + extra, self.cfg, rng)
        keep = [i for i, p in enumerate(pieces) if p not in specials][: self.num_pieces]
        tok = build_unigram([pieces[i] for i in keep], scores[keep], min_logp, self.base)
        assert tok.vocab_size == self.cfg.vocab_size, (tok.vocab_size, self.cfg.vocab_size)
        return tok
