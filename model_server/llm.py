"""A simulated language model in the scheduler's worker slots (the I/O shell around ``tokens``).

``LanguageModel.execute`` is the scheduler's ``Execute`` for the language-model mimics: each row
is one sequence ``(prompt tokens, output tokens, max tokens)``; the slot enters the sequences in
the KV cache, holds for their prefill and decode time (``tokens.step_timing``, slowed by the
sequences already decoding), frees them, and returns ``(prefill, decode, time per output token)``
per row. ``generate`` is how a request asks for one: it draws the lengths, waits for a slot and
returns what serving it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from model_server.mimic.recorder import Served
from model_server.scheduler import PreciseSleeper, Scheduler
from model_server.tokens import KvCache, KvState, Lengths, LengthSampler, TokenModel, step_timing

__all__ = ["LanguageModel"]


class LanguageModel:
    """The simulated model: its lengths, its timing and its KV cache."""

    def __init__(
        self,
        model: TokenModel,
        rng: np.random.Generator,
        *,
        on_admit: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleeper: PreciseSleeper | None = None,
    ) -> None:
        self.model = model
        self.sampler = LengthSampler(model, rng)
        self.kv = KvCache(model)
        self._on_admit = on_admit
        self._clock = clock
        self._sleeper = sleeper or PreciseSleeper(clock)

    def kv_state(self) -> KvState:
        """The cache now."""
        return self.kv.state(self._clock())

    async def execute(self, rows: np.ndarray, requests: int) -> np.ndarray:
        """Serve a batch of sequences in one slot (the scheduler's ``Execute``)."""
        now = self._clock()
        handles, timings = [], []
        for prompt, output, max_tokens in rows.tolist():
            lengths = Lengths(int(prompt), int(output), int(max_tokens), "")
            timing = step_timing(self.model, lengths, running=len(self.kv) + 1)
            handles.append(self.kv.start(lengths, now, timing))
            timings.append(timing)
        if self._on_admit is not None:
            self._on_admit()
        try:
            await self._sleeper.sleep(max(t.total_seconds for t in timings))
        finally:
            for handle in handles:
                self.kv.finish(handle)
        return np.array(
            [[t.prefill_seconds, t.decode_seconds, t.tpot_seconds] for t in timings],
            dtype=np.float64,
        )

    async def generate(
        self, scheduler: Scheduler, prompt_tokens: int | None = None, max_tokens: int | None = None
    ) -> Served:
        """Draw a request's lengths, serve it in a slot, and say what it took.

        Raises ``scheduler.Shed`` when the queue is full.
        """
        lengths = self.sampler.draw(prompt_tokens, max_tokens)
        rows = np.array([[lengths.prompt, lengths.output, lengths.max_tokens]], dtype=np.float64)
        outputs, waited, _ = await scheduler.submit_timed(rows)
        prefill, decode, tpot = (float(value) for value in outputs[0])
        return Served(
            queue_seconds=waited,
            compute_seconds=prefill + decode,
            prompt_tokens=lengths.prompt,
            output_tokens=lengths.output,
            max_tokens=lengths.max_tokens,
            prefill_seconds=prefill,
            decode_seconds=decode,
            tpot_seconds=tpot,
            finish_reason=lengths.finish_reason,
        )
