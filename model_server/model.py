"""The model: a numpy multi-layer perceptron whose weights come from a seeded generator.

``Mlp.load(size_mb, seed)`` allocates and fills about ``size_mb`` MiB of float32 weights, so
start-up costs time and memory like loading real weights. ``forward`` is the real matrix work (the
``compute`` mode); ``project`` is the cheap stand-in output of the ``simulated`` mode, whose service
time is a sleep instead. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INPUT_NAME = "input"
OUTPUT_NAME = "output"
INPUT_SIZE = 64
OUTPUT_SIZE = 10
MAX_HIDDEN = 1024


@dataclass(frozen=True)
class Mlp:
    """Weights of ``input → hidden x layers → output`` with ReLU between layers."""

    layers: tuple[np.ndarray, ...]
    projection: np.ndarray
    """``input → output`` directly: the simulated mode's output, cheap on purpose."""

    @classmethod
    def load(cls, size_mb: float, seed: int) -> Mlp:
        """Weights of about ``size_mb`` MiB, drawn from ``seed`` (every byte written)."""
        rng = np.random.default_rng(seed)
        total = max(size_mb, 0.0) * 1024 * 1024 / 4  # float32 weights
        # Enough square middle layers of at most MAX_HIDDEN, then the width that fills ``total``:
        # middle*hidden**2 + (INPUT_SIZE + OUTPUT_SIZE)*hidden + the projection = total.
        middle = max(1, math.ceil(total / MAX_HIDDEN**2))
        edges, rest = INPUT_SIZE + OUTPUT_SIZE, max(0.0, total - INPUT_SIZE * OUTPUT_SIZE)
        width = (math.sqrt(edges**2 + 4 * middle * rest) - edges) / (2 * middle)
        hidden = max(16, min(MAX_HIDDEN, round(width)))
        shapes = [(INPUT_SIZE, hidden), *([(hidden, hidden)] * middle), (hidden, OUTPUT_SIZE)]
        layers = tuple(
            rng.standard_normal(shape, dtype=np.float32) / np.float32(math.sqrt(shape[0]))
            for shape in shapes
        )
        projection = rng.standard_normal((INPUT_SIZE, OUTPUT_SIZE), dtype=np.float32)
        return cls(layers, projection)

    @property
    def size_bytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers) + self.projection.nbytes

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The full network on a ``(n, INPUT_SIZE)`` batch."""
        activation = batch
        for index, weights in enumerate(self.layers):
            activation = activation @ weights
            if index < len(self.layers) - 1:
                np.maximum(activation, 0, out=activation)
        return activation

    def project(self, batch: np.ndarray) -> np.ndarray:
        """A cheap deterministic output of the right shape (simulated mode)."""
        return batch @ self.projection
