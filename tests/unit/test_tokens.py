"""The token model: seeded lengths, prefill and decode timing, KV-cache occupancy over time."""

from __future__ import annotations

import numpy as np
import pytest

from model_server.tokens import KvCache, Lengths, LengthSampler, TokenModel, step_timing

MODEL = TokenModel(
    prompt_median_tokens=100,
    output_median_tokens=50,
    max_model_len=512,
    prefill_seconds_per_token=0.001,
    decode_step_seconds=0.01,
    batch_slowdown=0.5,
    kv_capacity_tokens=1024,
    kv_block_tokens=16,
)


def test_draws_are_seeded_and_respect_the_limits() -> None:
    first, again = (LengthSampler(MODEL, np.random.default_rng(3)) for _ in range(2))
    assert [first.draw() for _ in range(20)] == [again.draw() for _ in range(20)]
    sampler = LengthSampler(MODEL, np.random.default_rng(4))
    draws = [sampler.draw(max_tokens=64) for _ in range(2000)]
    assert all(1 <= d.output <= 64 and d.prompt + d.output <= 512 for d in draws)
    assert {d.finish_reason for d in draws} == {"stop", "length"}
    cut = [d for d in draws if d.finish_reason == "length"]
    assert all(d.output == min(64, 512 - d.prompt) for d in cut)
    prompts = np.array([d.prompt for d in draws])
    assert 80 < np.median(prompts) < 125  # lognormal around the median of 100


def test_a_given_prompt_is_kept_and_clamped_to_leave_room() -> None:
    sampler = LengthSampler(MODEL, np.random.default_rng(0))
    assert sampler.draw(prompt_tokens=30).prompt == 30
    huge = sampler.draw(prompt_tokens=10_000, max_tokens=50)
    assert (huge.prompt, huge.output, huge.finish_reason) == (511, 1, "length")


def test_decode_steps_slow_down_with_the_batch_and_prefill_with_the_prompt() -> None:
    lengths = Lengths(prompt=200, output=11, max_tokens=11, finish_reason="length")
    alone, crowded = step_timing(MODEL, lengths, 1), step_timing(MODEL, lengths, 5)
    assert alone.prefill_seconds == pytest.approx(0.2) == crowded.prefill_seconds
    assert (alone.tpot_seconds, crowded.tpot_seconds) == pytest.approx((0.01, 0.03))
    assert crowded.decode_seconds == pytest.approx(10 * 0.03)


def test_kv_occupancy_follows_the_sequences_in_flight() -> None:
    cache = KvCache(MODEL)
    lengths = Lengths(prompt=100, output=40, max_tokens=64, finish_reason="stop")
    timing = step_timing(MODEL, lengths, 1)  # prefill 0.1 s, steps of 0.01 s
    assert cache.state(0.0).usage == 0.0
    first = cache.start(lengths, 0.0, timing)
    during_prefill = cache.state(0.05)
    assert (during_prefill.used_tokens, during_prefill.reserved_tokens) == (100, 164)
    assert during_prefill.usage == pytest.approx(7 / 64)  # ceil(100 / 16) blocks of 64
    half_way = cache.state(0.1 + 0.195)
    assert half_way.used_tokens == 100 + 20
    second = cache.start(lengths, 0.2, timing)
    assert cache.state(0.25).sequences == 2
    assert cache.state(0.25).used_tokens > half_way.used_tokens - 20
    cache.finish(first)
    cache.finish(second)
    assert cache.state(1.0) == cache.state(0.0)


def test_occupancy_stops_at_one() -> None:
    cache = KvCache(MODEL)
    lengths = Lengths(prompt=500, output=10, max_tokens=10, finish_reason="length")
    for _ in range(5):
        cache.start(lengths, 0.0, step_timing(MODEL, lengths, 1))
    assert cache.state(0.0).usage == 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_model_len": 1}, "max_model_len"),
        ({"kv_capacity_tokens": 8}, "at least one block"),
        ({"decode_step_seconds": -1.0}, ">= 0"),
    ],
)
def test_bad_models_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenModel(**changes)
