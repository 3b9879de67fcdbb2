"""The mergeable latency sketch: a DDSketch with the logarithmic mapping at 1 % relative accuracy.

With ``gamma = (1 + a) / (1 - a)`` for the relative accuracy ``a = 0.01``, bin ``i`` holds the
latencies (in seconds) in ``(gamma**(i - 1), gamma**i]`` and stands for the value
``2 * gamma**i / (gamma + 1)``, which lies within ``a`` of every value in the bin. Latencies
below :data:`MIN_BINNED_VALUE` are only counted (``zero_count``) and stand for 0.0; latencies above
:data:`MAX_BINNED_VALUE` are clamped into the top bin, so every index lies in
``[MIN_INDEX, MAX_INDEX]``.

A merge is a bin-wise sum, so merging is exact, commutative and associative: sketches merged across
pods and time slices in any order give the same sketch as one built from all the values.
Quantiles follow ``numpy.quantile(samples, q)`` (its default ``'linear'`` method) with each order
statistic replaced by the representative value of its bin, so each result is within ``a`` of the
exact answer on the raw samples.

This module is a pure core: numpy only, no I/O, no clock, no logging, and nothing from the rest of
``adapter``. Every :class:`LatencySketch` is immutable, hence safe to share between tasks and
threads.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GAMMA",
    "MAX_BINNED_VALUE",
    "MAX_INDEX",
    "MIN_BINNED_VALUE",
    "MIN_INDEX",
    "RELATIVE_ACCURACY",
    "LatencySketch",
    "bin_index",
    "bin_value",
    "quantile_per_band",
    "quantile_per_sketch",
    "sum_per_band",
]

RELATIVE_ACCURACY: float = 0.01
"""The relative accuracy ``a`` of every bin's representative value (and so of every quantile)."""

GAMMA: float = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
"""The ratio between the upper and the lower edge of a bin."""

MIN_BINNED_VALUE: float = 1e-9
"""The smallest latency in seconds that is binned; smaller ones go to ``zero_count``."""

MAX_BINNED_VALUE: float = 1e6
"""The largest latency in seconds a bin may represent; larger ones are clamped into the top bin."""

_LOG_GAMMA = math.log(GAMMA)

Int64Buffer = array | NDArray[np.int64]
"""Native int64 counts, as an ``array("q")`` or an ndarray."""

_ZERO_INDEX = np.iinfo(np.int64).min
"""The index of the zero bin, which holds ``zero_count``, sorts first and stands for 0.0."""


def bin_index(values: ArrayLike) -> NDArray[np.int64]:
    """Return the bin index (int64) of each latency in seconds, elementwise.

    Values above :data:`MAX_BINNED_VALUE` get :data:`MAX_INDEX`. The edges are the float64 values
    ``numpy.power(GAMMA, i)``: an estimate from the logarithm is corrected by one in either
    direction by comparing with them, so a value equal to an edge lands in the bin it closes.

    Raises ``ValueError`` for a value below :data:`MIN_BINNED_VALUE` (those belong to
    ``zero_count``), NaN or infinite.

    >>> bin_index(np.array([1.0, 1.01, 0.5])).tolist()
    [0, 1, -34]
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.all((v >= MIN_BINNED_VALUE) & np.isfinite(v)):
        raise ValueError(
            f"latencies to bin must be finite and >= {MIN_BINNED_VALUE} s; "
            "smaller ones belong to zero_count"
        )
    v = np.minimum(v, MAX_BINNED_VALUE)
    estimate = np.ceil(np.log(v) / _LOG_GAMMA)
    estimate += v > np.power(GAMMA, estimate)  # above the upper edge: one bin up
    estimate -= v <= np.power(GAMMA, estimate - 1.0)  # at or below the lower edge: one bin down
    return estimate.astype(np.int64)


def bin_value(indices: ArrayLike) -> NDArray[np.float64]:
    """Return the representative latency ``2 * gamma**i / (gamma + 1)`` in seconds of each bin."""
    i = np.asarray(indices, dtype=np.float64)
    return 2.0 * np.power(GAMMA, i) / (GAMMA + 1.0)


MIN_INDEX: int = int(bin_index(MIN_BINNED_VALUE))
"""The lowest valid bin index: the bin holding :data:`MIN_BINNED_VALUE`."""

MAX_INDEX: int = int(bin_index(MAX_BINNED_VALUE))
"""The highest valid bin index: the bin holding :data:`MAX_BINNED_VALUE` (the clamp target)."""


class LatencySketch:
    """An immutable, mergeable sketch of latencies in seconds.

    ``indices`` are the sorted unique int64 indices of the non-empty bins, ``counts`` their
    positive int64 counts, and ``zero_count`` the number of latencies below
    :data:`MIN_BINNED_VALUE`. Both arrays are read-only.

    >>> s = LatencySketch.from_values([0.010, 0.012, 0.250])
    >>> s.count, s.to_bins()
    (3, {'-230': 1, '-221': 1, '-69': 1})
    >>> round(s.merge(LatencySketch.from_values([0.011])).quantile(0.5), 4)
    0.0115
    """

    # All of it is one read-only int64 array of shape (2, k + 1): row 0 the indices, row 1 the
    # counts, and column 0 the zero bin (_ZERO_INDEX, zero_count), which sorts before every bin.
    # So a merge is a plain bin-wise sum, and a quantile a plain search over cumulative counts,
    # with one concatenation for any number of sketches.
    __slots__ = ("_bins",)

    _bins: NDArray[np.int64]

    def __init__(
        self, indices: ArrayLike = (), counts: ArrayLike = (), zero_count: int = 0
    ) -> None:
        """Build a sketch from its parts, checking every invariant (``ValueError`` if one fails)."""
        idx = np.array(indices, dtype=np.int64, ndmin=1)
        cnt = np.array(counts, dtype=np.int64, ndmin=1)
        if idx.ndim != 1 or idx.shape != cnt.shape:
            raise ValueError("indices and counts must be 1-D arrays of the same length")
        if idx.size and not (idx[0] >= MIN_INDEX and idx[-1] <= MAX_INDEX):
            raise ValueError(f"bin indices must lie in [{MIN_INDEX}, {MAX_INDEX}]")
        if np.any(idx[1:] <= idx[:-1]):
            raise ValueError("bin indices must be strictly increasing")
        if np.any(cnt <= 0):
            raise ValueError("bin counts must be positive")
        if int(zero_count) != zero_count or zero_count < 0:
            raise ValueError("zero_count must be a non-negative integer")
        self._bins = _with_zero_bin(idx, cnt, int(zero_count))

    @classmethod
    def _trusted(cls, bins: NDArray[np.int64]) -> LatencySketch:
        """Wrap a (2, k + 1) array already known to hold the invariants, without copying it."""
        sketch = object.__new__(cls)
        bins.flags.writeable = False
        sketch._bins = bins
        return sketch

    @classmethod
    def empty(cls) -> LatencySketch:
        """Return the sketch of no latencies (the identity of :meth:`merge`)."""
        return cls._trusted(_EMPTY_BINS)

    @classmethod
    def from_values(cls, values: ArrayLike) -> LatencySketch:
        """Return the sketch of latencies in seconds (any shape; flattened).

        Values below :data:`MIN_BINNED_VALUE` (0.0 included) go to ``zero_count``; values above
        :data:`MAX_BINNED_VALUE` are clamped into the top bin. Raises ``ValueError`` for a
        negative, NaN or infinite value, or for input that is not numeric.
        """
        try:
            v = np.asarray(values, dtype=np.float64).ravel()
        except TypeError as e:
            raise ValueError(f"latencies must be numbers: {e}") from e
        if not np.all((v >= 0.0) & np.isfinite(v)):
            raise ValueError("latencies must be finite and non-negative")
        binned = v[v >= MIN_BINNED_VALUE]
        indices, counts = np.unique(bin_index(binned), return_counts=True)
        return cls._trusted(_with_zero_bin(indices, counts, v.size - binned.size))

    @classmethod
    def from_bins(cls, bins: Mapping[int, int], zero_count: int = 0) -> LatencySketch:
        """Return the sketch of a bin index -> count mapping, such as the wire ``bins`` object.

        Keys may be ints or their decimal strings (the wire form). The input is trusted, as the
        push validator has checked it: indices in ``[MIN_INDEX, MAX_INDEX]`` and unique, counts
        and ``zero_count`` integers, counts positive, ``zero_count`` non-negative.
        """
        n = len(bins)
        indices = np.fromiter(map(int, bins.keys()), dtype=np.int64, count=n)
        counts = np.fromiter(bins.values(), dtype=np.int64, count=n)
        if np.any(indices[1:] < indices[:-1]):
            order = np.argsort(indices)
            indices, counts = indices[order], counts[order]
        return cls._trusted(_with_zero_bin(indices, counts, int(zero_count)))

    @classmethod
    def from_bands(
        cls,
        bands: Sequence[tuple[int, Int64Buffer]],
        zero_counts: Sequence[int],
        scales: Sequence[int] | None = None,
    ) -> LatencySketch:
        """Return the bin-wise sum of dense bands of counts (see :func:`quantile_per_band`).

        The pooled latencies of many pods in one vectorized pass over their windows, exact
        (int64 throughout) up to 2**62 counts, scaled down alike beyond, without a sketch per
        pod. ``scales``: how many counts a value makes
        in each band (powers of two, a relay spreading a histogram's buckets counts 1024 a
        request); bands are rescaled to the largest, so each value weighs the same.
        """
        weights = None
        if scales is not None and len(set(scales)) > 1:
            largest = max(scales)
            weights = np.array([largest // scale for scale in scales], dtype=np.int64)
            zero_counts = [z * int(w) for z, w in zip(zero_counts, weights, strict=True)]
        zero_count = int(sum(zero_counts))
        counts, lengths, lows = _joined_bands(bands) if bands else (_NO_BINS,) * 3
        repeated = None if weights is None else np.repeat(weights, lengths).astype(np.float64)
        weighted = counts if repeated is None else counts * repeated  # floats: they cannot wrap
        total = zero_count + float(np.sum(weighted, dtype=np.float64))
        if total >= _MAX_POOLED_COUNT:
            # past int64 the sums would wrap: scale every count down alike (the quantiles barely
            # move at such totals), a bin that held anything keeping at least one
            shrink = 2.0 ** math.ceil(math.log2(2 * total / _MAX_POOLED_COUNT))
            counts = np.ceil(weighted / shrink).astype(np.int64)
            zero_count = math.ceil(zero_count / shrink)
        elif weights is not None:
            counts = counts * np.repeat(weights, lengths)  # exact in int64 below the bound
        if not bands:
            return cls._trusted(_with_zero_bin(_NO_BINS, _NO_BINS, zero_count))
        # bin low + i sits at joined position offset + i: its index is position + (low - offset)
        offsets = np.cumsum(lengths) - lengths
        indices = np.arange(counts.size) + np.repeat(lows - offsets, lengths)
        low = int(indices.min()) if indices.size else 0
        totals = np.zeros(int(indices.max()) - low + 1 if indices.size else 0, dtype=np.int64)
        np.add.at(totals, indices - low, counts)
        occupied = np.flatnonzero(totals)
        return cls._trusted(_with_zero_bin(occupied + low, totals[occupied], zero_count))

    @staticmethod
    def merge_all(sketches: Iterable[LatencySketch]) -> LatencySketch:
        """Return the bin-wise sum of the sketches (the empty sketch for none).

        Vectorized: one concatenation, one sort and one segmented integer sum over all bins, so
        counts stay exact and the result does not depend on the order of the sketches.
        """
        parts = [s._bins for s in sketches]
        if not parts:
            return LatencySketch._trusted(_EMPTY_BINS)
        if len(parts) == 1:
            return LatencySketch._trusted(parts[0])
        indices, counts = np.concatenate(parts, axis=1)
        order = np.argsort(indices)
        indices, counts = indices[order], counts[order]
        starts = np.flatnonzero(np.concatenate(([True], indices[1:] != indices[:-1])))
        # every part has a zero bin, so starts[0] == 0 is the merged zero bin
        return LatencySketch._trusted(np.stack((indices[starts], np.add.reduceat(counts, starts))))

    def merge(self, other: LatencySketch) -> LatencySketch:
        """Return the bin-wise sum of this sketch and ``other``."""
        return LatencySketch.merge_all((self, other))

    @property
    def indices(self) -> NDArray[np.int64]:
        """The sorted unique indices of the non-empty bins (read-only)."""
        return self._bins[0, 1:]

    @property
    def counts(self) -> NDArray[np.int64]:
        """The positive count of each bin in :attr:`indices` (read-only)."""
        return self._bins[1, 1:]

    @property
    def zero_count(self) -> int:
        """The number of latencies below :data:`MIN_BINNED_VALUE`."""
        return int(self._bins[1, 0])

    @property
    def count(self) -> int:
        """The number of latencies in the sketch, ``zero_count`` included."""
        return int(self._bins[1].sum())

    def is_empty(self) -> bool:
        """Whether the sketch holds no latency at all."""
        return self.count == 0

    def to_bins(self) -> dict[str, int]:
        """Return the wire form of the bins: decimal-string index -> positive count, ascending."""
        return dict(zip(map(str, self.indices.tolist()), self.counts.tolist(), strict=True))

    def quantile(self, q: float) -> float:
        """Return the ``q``-quantile in seconds; 0.0 for an empty sketch.

        Like ``numpy.quantile(samples, q)``: the position ``(n - 1) * q`` is interpolated linearly
        between the two order statistics around it, each replaced by the representative value of
        its bin (0.0 for the ``zero_count`` values, which sort first). Raises ``ValueError``
        unless ``0 <= q <= 1``.
        """
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Return :meth:`quantile` for each of ``qs``, in one vectorized pass."""
        q = _checked_quantiles(qs)
        indices, counts = self._bins
        cumulative = np.cumsum(counts)
        n = cumulative[-1]
        if n == 0:
            return [0.0] * q.size
        below, above, weight = _ranks(n, q)
        last = indices.size - 1

        def values_at(ranks: NDArray[np.int64]) -> NDArray[np.float64]:
            pos = np.minimum(np.searchsorted(cumulative, ranks, side="right"), last)
            return _representatives(indices[pos])

        return _lerp(values_at(below), values_at(above), weight).tolist()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        return np.array_equal(self._bins, other._bins)

    def __hash__(self) -> int:
        return hash(self._bins.tobytes())

    def __repr__(self) -> str:
        return f"LatencySketch.from_bins({self.to_bins()!r}, zero_count={self.zero_count})"


def quantile_per_sketch(sketches: Sequence[LatencySketch], q: float) -> NDArray[np.float64]:
    """Return the ``q``-quantile in seconds of each sketch (0.0 for an empty one), as float64.

    Equal, value for value, to ``[s.quantile(q) for s in sketches]``, but vectorized across the
    sketches: one concatenation, one cumulative sum and one ``searchsorted`` per order statistic
    over all their bins, which answers a selector over 1,000 pods in about a millisecond. Raises
    ``ValueError`` unless ``0 <= q <= 1``.
    """
    qs = _checked_quantiles((q,))
    if not sketches:
        return np.zeros(0)
    indices, counts = np.concatenate([s._bins for s in sketches], axis=1)
    return _quantile_of_layout(indices, counts, qs[0])


def _joined_bands(
    bands: Sequence[tuple[int, Int64Buffer]],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """All bands end to end: (their counts, each band's length, each band's lowest index).

    One ``bytes.join`` copies every band at C speed; nothing is built per band.
    """
    lengths = np.fromiter((len(b) for _, b in bands), dtype=np.int64, count=len(bands))
    lows = np.fromiter((low for low, _ in bands), dtype=np.int64, count=len(bands))
    counts = np.frombuffer(b"".join(b for _, b in bands), dtype=np.int64)
    return counts, lengths, lows


def quantile_per_band(
    bands: Sequence[tuple[int, Int64Buffer]], zero_counts: Sequence[int], q: float
) -> NDArray[np.float64]:
    """:func:`quantile_per_sketch` straight from dense bands of counts, one per sketch.

    A band ``(low, counts)`` counts bin ``low + i`` in ``counts[i]`` (zeros allowed), as the
    store keeps each pod's window; ``counts`` is any buffer of native int64 (an ``array("q")``
    or an int64 ndarray). One join and one cumulative sum over all bands, then a search per
    order statistic: a 1,000-pod quantile query right after every pod pushed builds nothing per
    pod, and does per-bin work only in C.
    """
    qs = _checked_quantiles((q,))
    if not bands:
        return np.zeros(0)
    flat, lengths, lows = _joined_bands(bands)
    through = np.zeros(flat.size + 1, dtype=np.int64)  # through[p]: counts before position p
    np.cumsum(flat, out=through[1:])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    ahead = through[starts]  # counts in the bands before each one
    zeros = np.asarray(zero_counts, dtype=np.int64)
    n = through[ends] - ahead + zeros
    below, above, weight = _ranks(n, qs[0])
    last = np.maximum(ends - 1, starts)

    def values_at(ranks: NDArray[np.int64]) -> NDArray[np.float64]:
        binned = ranks - zeros  # negative: the order statistic is one of the zero_count values
        position = np.searchsorted(through, ahead + binned, side="right") - 1
        index = np.clip(position, starts, last) - starts + lows
        return np.where(binned < 0, 0.0, bin_value(index))

    result = _lerp(values_at(below), values_at(above), weight)
    return np.where(n > 0, result, 0.0)


def sum_per_band(bands: Sequence[tuple[int, Int64Buffer]]) -> NDArray[np.float64]:
    """The sum of the values in each band, each count standing for its bin's representative
    value (so each sum is within the relative accuracy of the exact one): with the band's total
    count, the mean of a pod's latencies.

    >>> sum_per_band([(0, np.array([2, 0, 1]))]).round(4).tolist()
    [3.0104]
    """
    if not bands:
        return np.zeros(0)
    flat, lengths, lows = _joined_bands(bands)
    if not flat.size:
        return np.zeros(len(bands))
    offsets = np.cumsum(lengths) - lengths
    indices = np.arange(flat.size) + np.repeat(lows - offsets, lengths)
    weighted = np.concatenate(([0.0], np.cumsum(flat * bin_value(indices))))
    ends = np.cumsum(lengths)
    return weighted[ends] - weighted[ends - lengths]


def _quantile_of_layout(
    indices: NDArray[np.int64], counts: NDArray[np.int64], q: float
) -> NDArray[np.float64]:
    """The q-quantile of each sketch laid end to end, each starting with its zero bin."""
    cumulative = np.cumsum(counts)
    starts = np.flatnonzero(indices == _ZERO_INDEX)  # each sketch begins with its zero bin
    ahead = cumulative[starts] - counts[starts]  # values in the sketches before each one
    n = cumulative[np.append(starts[1:], indices.size) - 1] - ahead
    below, above, weight = _ranks(n, q)
    last = indices.size - 1

    def values_at(ranks: NDArray[np.int64]) -> NDArray[np.float64]:
        pos = np.searchsorted(cumulative, ahead + ranks, side="right")
        return _representatives(indices[np.clip(pos, 0, last)])

    result = _lerp(values_at(below), values_at(above), weight)
    return np.where(n > 0, result, 0.0)


def _with_zero_bin(
    indices: NDArray[np.int64], counts: NDArray[np.int64], zero_count: int
) -> NDArray[np.int64]:
    """Lay out a sketch: a (2, k + 1) array with the zero bin in front (see LatencySketch)."""
    bins = np.empty((2, indices.size + 1), dtype=np.int64)
    bins[:, 0] = (_ZERO_INDEX, zero_count)
    bins[0, 1:] = indices
    bins[1, 1:] = counts
    return bins


_NO_BINS = np.zeros(0, dtype=np.int64)
_MAX_POOLED_COUNT = 2.0**62
"""The most counts a pooled sketch holds exactly (int64, with room for its running sums)."""
_EMPTY_BINS = _with_zero_bin(_NO_BINS, _NO_BINS, 0)
_EMPTY_BINS.flags.writeable = False


def _representatives(indices: NDArray[np.int64]) -> NDArray[np.float64]:
    """:func:`bin_value` of each index, and 0.0 for the zero bin."""
    zero = indices == _ZERO_INDEX
    return np.where(zero, 0.0, bin_value(np.where(zero, 0, indices)))


def _checked_quantiles(qs: Sequence[float]) -> NDArray[np.float64]:
    """Return ``qs`` as a 1-D float64 array, or raise ``ValueError`` unless each is in [0, 1]."""
    q = np.asarray(qs)
    if q.ndim != 1 or q.dtype.kind not in "iuf" or not np.all((q >= 0) & (q <= 1)):
        raise ValueError(f"quantiles must be numbers in [0, 1], got {qs!r}")
    return q.astype(np.float64)


def _ranks(
    n: np.int64 | NDArray[np.int64], q: float | NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """The order statistics around position ``(n - 1) * q`` and the weight of the upper one.

    Computed exactly as ``numpy.quantile``'s 'linear' method does; either argument may be an
    array. Meaningless where ``n == 0``: the caller answers 0.0 there.
    """
    position = np.asarray((n - 1) * q, dtype=np.float64)
    floor = np.floor(position)
    below = floor.astype(np.int64)
    return below, np.minimum(below + 1, n - 1), position - floor


def _lerp(
    a: NDArray[np.float64], b: NDArray[np.float64], t: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Interpolate from ``a`` to ``b`` by ``t`` with the float steps of ``numpy.quantile``."""
    diff = b - a
    out = a + diff * t
    np.subtract(b, diff * (1.0 - t), out=out, where=t >= 0.5)
    return out
