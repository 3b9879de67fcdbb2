"""Tests for adapter.sketch: bin mapping, wire form, merging, and quantiles against numpy."""

import functools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter import sketch
from adapter.sketch import LatencySketch, quantile_per_band, quantile_per_sketch

TOLERANCE = sketch.RELATIVE_ACCURACY * (1 + 1e-9)  # the accuracy bound plus float noise only
QS = (0.5, 0.9, 0.95, 0.99, 0.999)
ALL_QS = (0.0, 0.001, 0.01, 0.25, *QS, 0.9999, 1.0)


def lognormal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.lognormal(mean=math.log(0.05), sigma=1.5, size=n)


def bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    fast = rng.lognormal(mean=math.log(0.004), sigma=0.5, size=n)
    slow = rng.lognormal(mean=math.log(2.0), sigma=0.7, size=n)
    return np.where(rng.random(n) < 0.8, fast, slow)


def pareto(rng: np.random.Generator, n: int) -> np.ndarray:
    return 1e-3 * (1.0 + rng.pareto(1.1, size=n))


def log_uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return 10.0 ** rng.uniform(-4.0, 2.0, size=n)


DISTRIBUTIONS = {
    "lognormal": lognormal,
    "bimodal": bimodal,
    "pareto": pareto,
    "log_uniform": log_uniform,
}


def samples(name: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` latencies in seconds from the named distribution, kept within 100 µs .. 100 s."""
    rng = np.random.default_rng([seed, sorted(DISTRIBUTIONS).index(name)])
    return np.clip(DISTRIBUTIONS[name](rng, n), 1e-4, 1e2)


def pod_slices(values: np.ndarray, seed: int, pods: int = 20, slices: int = 30) -> list:
    """Split ``values`` at random into ``pods x slices`` chunks, some of them empty."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, values.size + 1, size=pods * slices - 1))
    return np.split(values, cuts)


def assert_close(actual: float, expected: float) -> None:
    assert abs(actual - expected) <= TOLERANCE * expected, (actual, expected)


# --- the bin mapping -----------------------------------------------------------------------------


def test_gamma_follows_from_the_relative_accuracy():
    assert math.isclose(sketch.GAMMA, 1.01 / 0.99, rel_tol=1e-15)
    assert sketch.RELATIVE_ACCURACY == 0.01


@pytest.mark.parametrize(
    ("bound", "index"),
    [
        (sketch.MIN_BINNED_VALUE, sketch.MIN_INDEX),
        (sketch.MAX_BINNED_VALUE, sketch.MAX_INDEX),
    ],
)
def test_index_range_is_the_bins_of_the_bounds(bound, index):
    assert isinstance(index, int)
    assert sketch.GAMMA ** (index - 1) < bound <= sketch.GAMMA**index
    assert sketch.bin_index(np.array([bound])).tolist() == [index]


def test_index_range_values():
    assert (sketch.MIN_INDEX, sketch.MAX_INDEX) == (-1036, 691)


EDGES = np.arange(sketch.MIN_INDEX, sketch.MAX_INDEX + 1)


@pytest.mark.parametrize(
    ("nudge", "shift"),
    [
        (lambda edge: edge, 0),  # an exact edge gamma**i closes bin i
        (lambda edge: np.nextafter(edge, np.inf), 1),  # just above it opens bin i + 1
        (lambda edge: np.nextafter(edge, 0.0), 0),
        (lambda edge: edge * (1 + 1e-12), 1),
        (lambda edge: edge * (1 - 1e-12), 0),
    ],
)
def test_bin_index_at_every_edge(nudge, shift):
    values = nudge(np.power(sketch.GAMMA, EDGES.astype(float)))
    in_range = (values >= sketch.MIN_BINNED_VALUE) & (values <= sketch.MAX_BINNED_VALUE)
    got = sketch.bin_index(values[in_range])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, EDGES[in_range] + shift)


@pytest.mark.parametrize(
    ("value", "index"),
    [(1.0, 0), (1.0000001, 1), (1.01, 1), (0.5, -34), (0.99, 0), (0.98, -1)],
)
def test_bin_index_small_cases(value, index):
    assert sketch.bin_index(np.array([value])).tolist() == [index]


def test_bin_value_is_within_accuracy_of_every_value_in_its_bin():
    values = np.geomspace(sketch.MIN_BINNED_VALUE, sketch.MAX_BINNED_VALUE, 2_000_003)
    represented = sketch.bin_value(sketch.bin_index(values))
    assert np.all(np.abs(represented - values) <= TOLERANCE * values)


def test_bin_value_formula_and_own_bin():
    indices = EDGES
    expected = 2 * sketch.GAMMA ** indices.astype(float) / (sketch.GAMMA + 1)
    np.testing.assert_allclose(sketch.bin_value(indices), expected, rtol=1e-12)
    # the lowest bin's value, 0.99 * gamma**MIN_INDEX, is below MIN_BINNED_VALUE: not binned again
    assert sketch.bin_value(sketch.MIN_INDEX) < sketch.MIN_BINNED_VALUE
    inner = indices[1:]
    np.testing.assert_array_equal(sketch.bin_index(sketch.bin_value(inner)), inner)


@pytest.mark.parametrize("value", [1e6, 1e6 * (1 + 1e-12), 2e6, 1e9, 1e300])
def test_bin_index_clamps_into_the_top_bin(value):
    assert sketch.bin_index(np.array([value])).tolist() == [sketch.MAX_INDEX]


@pytest.mark.parametrize("value", [0.0, 9.99e-10, -1.0, math.nan, math.inf, -math.inf])
def test_bin_index_rejects_what_it_cannot_bin(value):
    with pytest.raises(ValueError, match="zero_count"):
        sketch.bin_index(np.array([1.0, value]))


# --- building sketches ---------------------------------------------------------------------------


def test_empty_sketch():
    empty = LatencySketch.empty()
    assert empty.is_empty()
    assert empty.count == 0
    assert empty.zero_count == 0
    assert empty.to_bins() == {}
    assert empty.quantile(0.99) == 0.0
    assert empty.quantiles([0.0, 0.5, 1.0]) == [0.0, 0.0, 0.0]
    assert empty == LatencySketch.from_values([]) == LatencySketch()


def test_from_values_bins_and_counts():
    s = LatencySketch.from_values([0.010, 0.012, 0.0101, 0.250, 0.010])
    assert s.indices.dtype == np.int64
    assert s.counts.dtype == np.int64
    assert s.indices.tolist() == [-230, -229, -221, -69]
    assert s.counts.tolist() == [2, 1, 1, 1]
    assert s.count == 5
    assert not s.is_empty()


@pytest.mark.parametrize(
    ("values", "zero_count", "bins"),
    [
        ([0.0], 1, {}),
        ([-0.0, 0.0, 5e-10, 9.999999e-10], 4, {}),
        ([1e-9], 0, {str(sketch.MIN_INDEX): 1}),
        ([0.0, 1e-12, 1e-9, 1.0], 2, {str(sketch.MIN_INDEX): 1, "0": 1}),
    ],
)
def test_values_below_the_binned_range_go_to_zero_count(values, zero_count, bins):
    s = LatencySketch.from_values(values)
    assert s.zero_count == zero_count
    assert s.to_bins() == bins
    assert s.count == len(values)
    assert not s.is_empty()


@pytest.mark.parametrize("values", [[1e7], [2e6, 1e9, 1.7e308]])
def test_values_above_the_binned_range_are_clamped(values):
    s = LatencySketch.from_values([*values, 1.0])
    assert s.to_bins() == {"0": 1, str(sketch.MAX_INDEX): len(values)}
    assert s.quantile(1.0) == sketch.bin_value(sketch.MAX_INDEX)


@pytest.mark.parametrize(
    "values",
    [[-1e-3], [0.1, -0.0001], [math.nan], [0.1, math.inf], [-math.inf], ["fast"], [None], [{}]],
)
def test_from_values_rejects_invalid_latencies(values):
    with pytest.raises(ValueError):
        LatencySketch.from_values(values)


def test_from_values_accepts_any_shape():
    grid = np.array([[0.1, 0.2], [0.3, 0.0]])
    assert LatencySketch.from_values(grid) == LatencySketch.from_values(grid.ravel())
    assert LatencySketch.from_values(0.1) == LatencySketch.from_values([0.1])


@pytest.mark.parametrize(
    ("indices", "counts", "zero_count"),
    [
        ([1, 1], [1, 1], 0),  # duplicate
        ([2, 1], [1, 1], 0),  # unsorted
        ([1], [0], 0),  # empty bin
        ([1], [-3], 0),
        ([1, 2], [1], 0),  # lengths differ
        ([[1]], [[1]], 0),  # not 1-D
        ([sketch.MIN_INDEX - 1], [1], 0),
        ([sketch.MAX_INDEX + 1], [1], 0),
        ([], [], -1),
        ([], [], 1.5),
    ],
)
def test_constructor_checks_invariants(indices, counts, zero_count):
    with pytest.raises(ValueError):
        LatencySketch(indices, counts, zero_count)


def test_constructor_accepts_valid_parts():
    s = LatencySketch([sketch.MIN_INDEX, 0, sketch.MAX_INDEX], [1, 2, 3], 4)
    assert s.count == 10
    assert s == LatencySketch.from_bins({sketch.MAX_INDEX: 3, 0: 2, sketch.MIN_INDEX: 1}, 4)


def test_sketch_is_immutable():
    s = LatencySketch.from_values([0.1, 0.2])
    with pytest.raises(ValueError, match="read-only"):
        s.indices[0] = 5
    with pytest.raises(ValueError, match="read-only"):
        s.counts[0] = 5
    with pytest.raises(AttributeError):
        s.zero_count = 3  # type: ignore[misc]
    source = np.array([1, 2])
    built = LatencySketch(source, [1, 1])
    source[0] = 0
    assert built.indices.tolist() == [1, 2]


# --- the wire form -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("zero_count", [0, 7])
def test_wire_round_trip(name, zero_count):
    original = LatencySketch.from_values(np.concatenate([samples(name, 5000), [0.0] * zero_count]))
    wire = json.loads(json.dumps({"zero_count": original.zero_count, "bins": original.to_bins()}))
    assert wire["zero_count"] == zero_count
    assert all(key == str(int(key)) for key in wire["bins"])
    assert all(type(count) is int and count > 0 for count in wire["bins"].values())
    assert list(wire["bins"]) == [str(i) for i in original.indices.tolist()]
    with_str_keys = LatencySketch.from_bins(wire["bins"], wire["zero_count"])
    with_int_keys = LatencySketch.from_bins(
        {int(k): v for k, v in reversed(wire["bins"].items())}, wire["zero_count"]
    )
    assert with_str_keys == original
    assert with_int_keys == original
    assert hash(with_int_keys) == hash(original)


@pytest.mark.parametrize(
    ("bins", "zero_count", "wire"),
    [
        ({}, 0, {}),
        ({}, 3, {}),
        ({-230: 2}, 0, {"-230": 2}),
        ({5: 1, -5: 2, 0: 3}, 1, {"-5": 2, "0": 3, "5": 1}),
    ],
)
def test_to_bins_wire_keys(bins, zero_count, wire):
    s = LatencySketch.from_bins(bins, zero_count)
    assert s.to_bins() == wire
    assert list(s.to_bins()) == list(wire)
    assert s.zero_count == zero_count
    assert s.count == sum(bins.values()) + zero_count


# --- merging -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merge_order_does_not_matter(name, seed):
    values = np.concatenate([samples(name, 18_000, seed), np.zeros(seed * 5)])
    whole = LatencySketch.from_values(values)
    rng = np.random.default_rng(seed)
    parts = [
        LatencySketch.from_values(chunk) for chunk in pod_slices(rng.permutation(values), seed)
    ]
    order = rng.permutation(len(parts))
    merged = LatencySketch.merge_all(parts[i] for i in order)
    assert merged == whole
    np.testing.assert_array_equal(merged.indices, whole.indices)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.zero_count == whole.zero_count
    assert functools.reduce(LatencySketch.merge, reversed(parts)) == whole


def test_merge_sums_bins():
    a = LatencySketch.from_bins({-3: 1, 0: 2}, 1)
    b = LatencySketch.from_bins({0: 5, 4: 1}, 2)
    assert a.merge(b).to_bins() == {"-3": 1, "0": 7, "4": 1}
    assert a.merge(b).zero_count == 3
    assert a.merge(b) == b.merge(a)


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [LatencySketch.empty()],
        [LatencySketch.empty(), LatencySketch.empty()],
        [LatencySketch.from_bins({}, 2), LatencySketch.from_bins({}, 3)],
        [LatencySketch.from_bins({1: 1}), LatencySketch.empty()],
    ],
)
def test_merge_all_degenerate_inputs(parts):
    merged = LatencySketch.merge_all(parts)
    assert merged.count == sum(p.count for p in parts)
    assert merged.zero_count == sum(p.zero_count for p in parts)
    assert merged.to_bins() == ({"1": 1} if merged.indices.size else {})


def test_merge_leaves_its_inputs_alone():
    a = LatencySketch.from_values([0.1, 0.2])
    b = LatencySketch.from_values([0.2, 0.3])
    a_bins, b_bins = a.to_bins(), b.to_bins()
    a.merge(b)
    LatencySketch.merge_all([a, b, a])
    assert (a.to_bins(), b.to_bins()) == (a_bins, b_bins)


# --- quantiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("q", QS)
def test_quantile_within_accuracy_single_sketch(name, q):
    values = samples(name, 20_000)
    assert_close(LatencySketch.from_values(values).quantile(q), float(np.quantile(values, q)))


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("q", QS)
def test_quantile_within_accuracy_after_merging_pods_and_slices(name, q):
    values = samples(name, 12_000, seed=7)
    parts = [LatencySketch.from_values(chunk) for chunk in pod_slices(values, seed=8)]
    assert len(parts) == 600
    merged = LatencySketch.merge_all(parts)
    assert_close(merged.quantile(q), float(np.quantile(values, q)))


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("n", [1, 2, 3, 10, 101])
def test_quantile_is_numpy_quantile_of_representative_values(name, n):
    values = np.concatenate([samples(name, n, seed=n), np.zeros(n // 3)])
    represented = np.where(
        values >= sketch.MIN_BINNED_VALUE,
        sketch.bin_value(sketch.bin_index(np.maximum(values, sketch.MIN_BINNED_VALUE))),
        0.0,
    )
    s = LatencySketch.from_values(values)
    expected = np.quantile(represented, ALL_QS)
    assert s.quantiles(ALL_QS) == expected.tolist()
    assert [s.quantile(q) for q in ALL_QS] == expected.tolist()


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([0.0, 0.0, 0.0, 1.0], 0.5, 0.0),
        ([0.0, 0.0, 0.0, 1.0], 1.0, 0.99),
        ([0.0, 0.0, 0.0, 1.0], 0.8, 0.4 * 0.99),
        ([1.0, 1.0], 0.3, 0.99),
        ([1.0], 0.0, 0.99),
        ([1.0, 1.01], 0.5, (0.99 + 2 * sketch.GAMMA / (sketch.GAMMA + 1)) / 2),
        ([0.0], 1.0, 0.0),
    ],
)
def test_quantile_small_cases(values, q, expected):
    assert LatencySketch.from_values(values).quantile(q) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan, math.inf, -math.inf, "0.5", None, [0.5]])
def test_quantile_rejects_invalid_q(q):
    s = LatencySketch.from_values([0.1, 0.2])
    with pytest.raises(ValueError):
        s.quantile(q)
    with pytest.raises(ValueError):
        s.quantiles([0.5, q])
    with pytest.raises(ValueError):
        sketch.quantile_per_sketch([s], q)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(min_value=1e-4, max_value=1e2), min_size=1, max_size=300),
    q=st.floats(min_value=0.0, max_value=1.0),
)
def test_every_quantile_within_accuracy_of_numpy(values, q):
    s = LatencySketch.from_values(values)
    for quantile in (q, *ALL_QS):
        assert_close(s.quantile(quantile), float(np.quantile(values, quantile)))


# --- quantiles across many sketches --------------------------------------------------------------


def mixed_sketches(seed: int) -> list:
    rng = np.random.default_rng(seed)
    names = sorted(DISTRIBUTIONS)
    result = []
    for i in range(300):
        kind = rng.integers(0, 8)
        if kind == 0:
            result.append(LatencySketch.empty())
        elif kind == 1:
            result.append(LatencySketch.from_bins({}, int(rng.integers(1, 5))))
        else:
            values = samples(names[i % 4], int(rng.integers(1, 200)), seed=seed * 1000 + i)
            zeros = np.zeros(int(rng.integers(0, 3)) * int(rng.integers(0, 2)))
            result.append(LatencySketch.from_values(np.concatenate([values, zeros])))
    return result


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("q", ALL_QS)
def test_quantile_per_sketch_equals_each_sketch_quantile(seed, q):
    sketches = mixed_sketches(seed)
    got = sketch.quantile_per_sketch(sketches, q)
    assert got.dtype == np.float64
    assert got.shape == (len(sketches),)
    assert got.tolist() == [s.quantile(q) for s in sketches]


@pytest.mark.parametrize(
    "sketches",
    [
        [],
        [LatencySketch.empty()],
        [LatencySketch.from_bins({}, 4)],
        [LatencySketch.empty(), LatencySketch.from_bins({}, 1), LatencySketch.empty()],
        [LatencySketch.from_values([0.1]), LatencySketch.empty()],
        [LatencySketch.empty(), LatencySketch.from_values([0.1, 3.0])],
        [LatencySketch.from_bins({}, 2), LatencySketch.from_values([0.0, 0.5])],
        [LatencySketch.from_values([2.0]), LatencySketch.from_values([0.001])],
    ],
)
@pytest.mark.parametrize("q", [0.0, 0.5, 0.99, 1.0])
def test_quantile_per_sketch_edge_cases(sketches, q):
    expected = [s.quantile(q) for s in sketches]
    assert sketch.quantile_per_sketch(sketches, q).tolist() == expected
    assert all(r == 0.0 for s, r in zip(sketches, expected, strict=True) if not s.indices.size)


def test_quantile_per_band_equals_quantile_per_sketch() -> None:
    rng = np.random.default_rng(42)
    sketches = [LatencySketch.empty(), LatencySketch.from_bins({}, zero_count=3)]
    sketches += [
        LatencySketch.from_values(rng.lognormal(np.log(median), 0.6, rng.integers(1, 400)))
        for median in rng.uniform(0.001, 2.0, 60)
    ]
    sketches.append(LatencySketch.from_bins({sketch.MIN_INDEX: 2, sketch.MAX_INDEX: 1}, 1))
    # zero_count values among binned ones: order statistics on either side of them
    sketches += [LatencySketch.from_bins({-100: 2, -90: 1}, 5), LatencySketch.from_bins({7: 50}, 1)]
    # Dense bands as the store keeps them: a margin of empty bins on either side, zeros inside.
    bands = []
    for s in sketches:
        low = max(sketch.MIN_INDEX, int(s.indices[0]) - 3) if s.indices.size else 0
        high = min(sketch.MAX_INDEX, int(s.indices[-1]) + 5) if s.indices.size else -1
        band = np.zeros(high - low + 1, dtype=np.int64)
        band[s.indices - low] = s.counts
        bands.append((low, band))
    zero_counts = [s.zero_count for s in sketches]
    for q in (0.0, 0.01, 0.5, 0.6, 0.9, 0.99, 1.0):
        expected = quantile_per_sketch(sketches, q)
        assert np.array_equal(quantile_per_band(bands, zero_counts, q), expected)
    assert quantile_per_band([], [], 0.5).size == 0


def test_from_bands_is_the_merge_of_the_bands_sketches() -> None:
    rng = np.random.default_rng(5)
    sketches = [LatencySketch.empty(), LatencySketch.from_bins({}, zero_count=2)]
    sketches += [
        LatencySketch.from_values(rng.lognormal(np.log(median), 1.0, rng.integers(1, 300)))
        for median in rng.uniform(1e-4, 50.0, 40)
    ]
    sketches.append(LatencySketch.from_bins({sketch.MIN_INDEX: 1, sketch.MAX_INDEX: 4}, 1))
    bands = []
    for s in sketches:
        low = int(s.indices[0]) if s.indices.size else 0
        band = np.zeros(int(s.indices[-1]) - low + 1 if s.indices.size else 0, dtype=np.int64)
        band[s.indices - low] = s.counts
        bands.append((low, band))
    zero_counts = [s.zero_count for s in sketches]
    assert LatencySketch.from_bands(bands, zero_counts) == LatencySketch.merge_all(sketches)
    assert LatencySketch.from_bands(bands[:1], zero_counts[:1]) == LatencySketch.empty()
    assert LatencySketch.from_bands([], []) == LatencySketch.empty()


def test_pooled_bands_past_int64_are_scaled_down_not_overflowed() -> None:
    # a pod counting 1 a request whose window holds 6e15 zeros and 6e15 in bin 10, pooled with a
    # relayed pod counting 1024 a request: rescaled to 1024, 1.2e19 counts, past int64 (the
    # Deployment's p99 was an OverflowError, a 500, and the bins' products wrapped negative)
    huge = 6 * 10**15
    bands = [(10, np.array([huge], dtype=np.int64)), (20, np.array([1024], dtype=np.int64))]
    pooled = LatencySketch.from_bands(bands, [huge, 0], [1, 1024])
    assert pooled.zero_count > 0 and (pooled.counts > 0).all()
    assert pooled.indices.tolist() == [10, 20]  # the relayed pod's bin is not rounded away
    assert pooled.quantile(0.25) == 0.0
    assert pooled.quantile(0.75) == pytest.approx(sketch.bin_value(10))
    assert pooled.quantile(0.99) == pytest.approx(sketch.bin_value(10))
    crowded = LatencySketch.from_bands(bands, [10**16, 0], [1, 1024])  # zeros alone past int64
    assert crowded.quantile(0.5) == 0.0 and crowded.counts.tolist()[-1] > 0
    # in range, the pooled counts stay exact
    small = LatencySketch.from_bands(bands[1:] + bands[:1], [0, 3], [1024, 2])
    assert small.zero_count == 3 * 512 and small.counts.tolist() == [huge * 512, 1024]
