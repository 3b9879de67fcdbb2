"""Token generation without a GPU: request lengths, prefill and decode times, KV-cache occupancy.

The language-model mimics (``--mimic vllm|sglang|tgi``) serve each request in a worker slot of
the usual scheduler; this module decides what that slot does:

- ``LengthSampler`` draws a prompt length and a natural output length (lognormal, seeded numpy);
  the output stops at ``max_tokens`` (finish reason ``length``) or at its natural end (``stop``).
- ``step_timing`` gives the prefill time (proportional to the prompt) and the decode step time,
  which grows with the sequences decoding together (continuous batching shares the GPU step):
  ``decode_step * (1 + batch_slowdown * (running - 1))``. The first token comes at the end of
  the prefill, so the time to first token is the wait for a slot plus the prefill.
- ``KvCache`` holds the sequences in flight; a sequence occupies its prompt from the start of its
  prefill and one more token per decode step, in blocks of ``kv_block_tokens`` (vLLM's paged
  blocks); occupancy is the share of blocks used.

Simplifications, stated: the decode step time is fixed when a sequence starts (later arrivals do
not slow it down), and a full cache does not preempt or hold back admission (occupancy stops at
1); the worker slots (``--max-concurrency``, vLLM's max_num_seqs) are what limits the batch.

Pure: numpy and the standard library, time passed in as ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "KvCache",
    "KvState",
    "LengthSampler",
    "Lengths",
    "StepTiming",
    "TokenModel",
    "step_timing",
]


@dataclass(frozen=True)
class TokenModel:
    """The simulated model's sizes and speeds."""

    prompt_median_tokens: float = 200.0
    prompt_sigma: float = 0.8
    """Lognormal shape of prompt lengths."""
    output_median_tokens: float = 100.0
    output_sigma: float = 0.8
    max_model_len: int = 4096
    """Prompt plus output at most (vLLM's --max-model-len; TGI's --max-total-tokens)."""
    prefill_seconds_per_token: float = 0.0001
    decode_step_seconds: float = 0.01
    """One decode step with a single sequence running."""
    batch_slowdown: float = 0.1
    """Each other running sequence makes a decode step this much longer."""
    kv_capacity_tokens: int = 16384
    kv_block_tokens: int = 16

    def __post_init__(self) -> None:
        problems = []
        if self.max_model_len < 2:
            problems.append("max_model_len must be >= 2")
        if self.kv_block_tokens < 1 or self.kv_capacity_tokens < self.kv_block_tokens:
            problems.append("the KV cache must hold at least one block")
        if min(self.prompt_median_tokens, self.output_median_tokens) < 1:
            problems.append("median lengths must be >= 1 token")
        if min(self.prefill_seconds_per_token, self.decode_step_seconds, self.batch_slowdown) < 0:
            problems.append("times and the slowdown must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Lengths:
    """One request's token counts."""

    prompt: int
    output: int
    max_tokens: int
    finish_reason: str
    """``length`` when ``max_tokens`` (or the context) cut it, ``stop`` otherwise."""


class LengthSampler:
    """Seeded draws of request lengths."""

    def __init__(self, model: TokenModel, rng: np.random.Generator) -> None:
        self.model = model
        self._rng = rng

    def draw(self, prompt_tokens: int | None = None, max_tokens: int | None = None) -> Lengths:
        """Lengths for a request; a given prompt length is kept (clamped to leave room for one
        output token), a missing one drawn; ``max_tokens`` defaults to what the context leaves.
        """
        model = self.model
        if prompt_tokens is None:
            prompt_tokens = _lognormal(self._rng, model.prompt_median_tokens, model.prompt_sigma)
        prompt = min(max(1, prompt_tokens), model.max_model_len - 1)
        room = model.max_model_len - prompt
        limit = room if max_tokens is None else min(max(1, max_tokens), room)
        natural = _lognormal(self._rng, model.output_median_tokens, model.output_sigma)
        if natural > limit:
            return Lengths(prompt, limit, limit if max_tokens is None else max_tokens, "length")
        return Lengths(prompt, natural, limit if max_tokens is None else max_tokens, "stop")


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> int:
    return max(1, round(median * math.exp(rng.normal(0.0, sigma))))


@dataclass(frozen=True)
class StepTiming:
    """How long a sequence's phases take, in seconds."""

    prefill_seconds: float
    tpot_seconds: float
    """One decode step (time per output token after the first)."""
    decode_seconds: float

    @property
    def total_seconds(self) -> float:
        return self.prefill_seconds + self.decode_seconds


def step_timing(model: TokenModel, lengths: Lengths, running: int) -> StepTiming:
    """The timing of a sequence that starts with ``running`` sequences in flight (itself included).

    >>> t = step_timing(TokenModel(decode_step_seconds=0.01, batch_slowdown=0.5),
    ...                 Lengths(100, 11, 11, "length"), running=3)
    >>> round(t.tpot_seconds, 6), round(t.decode_seconds, 6)
    (0.02, 0.2)
    """
    tpot = model.decode_step_seconds * (1 + model.batch_slowdown * (max(1, running) - 1))
    prefill = model.prefill_seconds_per_token * lengths.prompt
    return StepTiming(prefill, tpot, tpot * (lengths.output - 1))


@dataclass(frozen=True)
class KvState:
    """The cache at one instant."""

    used_tokens: int
    usage: float
    """Share of blocks held, 0-1."""
    reserved_tokens: int
    """Prompt plus max new tokens of the sequences in flight (what TGI budgets)."""
    capacity_tokens: int
    sequences: int


@dataclass
class _Sequence:
    lengths: Lengths
    started: float
    timing: StepTiming


@dataclass
class KvCache:
    """The sequences in flight and the cache blocks they hold."""

    model: TokenModel
    _sequences: dict[int, _Sequence] = field(default_factory=dict)
    _next: int = 0

    def __len__(self) -> int:
        return len(self._sequences)

    def start(self, lengths: Lengths, now: float, timing: StepTiming) -> int:
        """A sequence enters a slot at ``now``; returns its handle for ``finish``."""
        self._next += 1
        self._sequences[self._next] = _Sequence(lengths, now, timing)
        return self._next

    def finish(self, handle: int) -> None:
        """The sequence is done; its blocks are freed."""
        self._sequences.pop(handle, None)

    def state(self, now: float) -> KvState:
        """Occupancy at ``now``."""
        block = self.model.kv_block_tokens
        used = blocks = reserved = 0
        for sequence in self._sequences.values():
            tokens = _tokens_held(sequence, now)
            used += tokens
            blocks += math.ceil(tokens / block)
            lengths = sequence.lengths
            reserved += lengths.prompt + lengths.max_tokens
        total_blocks = self.model.kv_capacity_tokens // block
        return KvState(
            used_tokens=used,
            usage=min(1.0, blocks / total_blocks),
            reserved_tokens=reserved,
            capacity_tokens=self.model.kv_capacity_tokens,
            sequences=len(self._sequences),
        )


def _tokens_held(sequence: _Sequence, now: float) -> int:
    """The prompt from the prefill on, plus the output tokens generated by ``now``."""
    lengths, timing = sequence.lengths, sequence.timing
    decoding = now - sequence.started - timing.prefill_seconds
    if decoding < 0:
        return lengths.prompt
    if timing.tpot_seconds <= 0:
        return lengths.prompt + lengths.output
    generated = 1 + int(decoding / timing.tpot_seconds)
    return lengths.prompt + min(lengths.output, generated)
