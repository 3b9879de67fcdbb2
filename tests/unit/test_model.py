"""Tests for model_server.model: weights sized as asked and drawn from the seed, output shapes."""

import numpy as np
import pytest

from model_server.model import INPUT_SIZE, MAX_HIDDEN, OUTPUT_SIZE, Mlp

MIB = 2**20


@pytest.fixture(scope="module")
def mlp() -> Mlp:
    return Mlp.load(1.0, seed=42)


def batch(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, INPUT_SIZE), dtype=np.float32)


# --- load -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size_mb", [0.02, 0.1, 0.5, 1.0, 3.0, 4.5, 10.0, 16.0, 40.0])
def test_load_allocates_about_the_requested_size(size_mb):
    weights = Mlp.load(size_mb, seed=1)
    assert weights.size_bytes / MIB == pytest.approx(size_mb, rel=0.01)
    assert weights.size_bytes == sum(
        array.nbytes for array in (*weights.layers, weights.projection)
    )
    assert all(array.dtype == np.float32 for array in weights.layers)
    assert max(max(layer.shape) for layer in weights.layers) <= MAX_HIDDEN


@pytest.mark.parametrize("size_mb", [0.0, -5.0, 0.001])
def test_tiny_or_negative_sizes_give_the_smallest_model(size_mb):
    weights = Mlp.load(size_mb, seed=1)
    assert weights.size_bytes < 0.01 * MIB
    assert weights.forward(batch(2)).shape == (2, OUTPUT_SIZE)


def test_layers_chain_from_input_to_output(mlp):
    assert mlp.layers[0].shape[0] == INPUT_SIZE
    assert mlp.layers[-1].shape[1] == OUTPUT_SIZE
    for first, second in zip(mlp.layers, mlp.layers[1:], strict=False):
        assert first.shape[1] == second.shape[0]
    assert mlp.projection.shape == (INPUT_SIZE, OUTPUT_SIZE)


def test_every_weight_is_drawn():
    # Scaled normal draws: no zero pages left behind, and a spread of 1/sqrt(fan-in).
    for layer in Mlp.load(2.0, seed=3).layers:
        assert np.count_nonzero(layer) == layer.size
        assert layer.std() * np.sqrt(layer.shape[0]) == pytest.approx(1.0, rel=0.05)


def test_load_is_deterministic_for_a_seed():
    first, again, other = Mlp.load(0.5, seed=7), Mlp.load(0.5, seed=7), Mlp.load(0.5, seed=8)
    for array, same, different in zip(
        (*first.layers, first.projection),
        (*again.layers, again.projection),
        (*other.layers, other.projection),
        strict=True,
    ):
        np.testing.assert_array_equal(array, same)
        assert not np.array_equal(array, different)


# --- forward and project ----------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 2, 17, 64])
def test_forward_and_project_shapes(mlp, rows):
    inputs = batch(rows)
    for output in (mlp.forward(inputs), mlp.project(inputs)):
        assert output.shape == (rows, OUTPUT_SIZE)
        assert output.dtype == np.float32
        assert np.isfinite(output).all()
        assert np.count_nonzero(output) > 0


def test_forward_is_deterministic_and_row_wise(mlp):
    inputs = batch(8)
    kept = inputs.copy()
    output = mlp.forward(inputs)
    np.testing.assert_array_equal(inputs, kept)  # the caller's batch is not overwritten
    np.testing.assert_array_equal(mlp.forward(inputs), output)
    np.testing.assert_array_equal(Mlp.load(1.0, seed=42).forward(inputs), output)
    # Each row's output depends on that row only, so batching does not change answers.
    np.testing.assert_allclose(mlp.forward(inputs[3:4]), output[3:4], rtol=1e-5, atol=1e-6)
    assert not np.array_equal(Mlp.load(1.0, seed=43).forward(inputs), output)


def test_forward_applies_relu_between_layers(mlp):
    inputs = batch(4)
    linear = inputs
    for weights in mlp.layers:
        linear = linear @ weights
    assert not np.allclose(mlp.forward(inputs), linear)


def test_project_is_the_cheap_linear_map(mlp):
    inputs = batch(5)
    np.testing.assert_array_equal(mlp.project(inputs), inputs @ mlp.projection)
    np.testing.assert_allclose(mlp.project(2 * inputs), 2 * mlp.project(inputs), rtol=1e-6)
