"""Tests of benchmarks.flops: the graph count against the hand formulas."""

import keras
import pytest
import tensorflow as tf

from benchmarks import flops


def _count(model, shape):
    return flops.forward_flops(model, tf.zeros(shape)).as_dict()


def test_dense_is_two_times_batch_in_out():
    model = keras.Sequential([keras.Input((7,)), keras.layers.Dense(5)])
    count = _count(model, (3, 7))
    assert count["dense_flops"] == 2 * 3 * 7 * 5
    assert count["by_op_type"] == {"MatMul": 2 * 3 * 7 * 5}
    assert count["uncounted"] == {}


def test_dense_on_a_sequence_counts_every_position():
    model = keras.Sequential([keras.Input((4, 7)), keras.layers.Dense(5)])
    assert _count(model, (2, 4, 7))["dense_flops"] == 2 * 2 * 4 * 7 * 5


@pytest.mark.parametrize("padding, out_size", [("same", 10), ("valid", 8)])
def test_conv2d_is_two_times_output_kernel_in(padding, out_size):
    model = keras.Sequential(
        [keras.Input((10, 12, 3)), keras.layers.Conv2D(4, 3, padding=padding)]
    )
    out_width = out_size + 2
    expected = 2 * (2 * out_size * out_width * 4) * (3 * 3 * 3)
    count = _count(model, (2, 10, 12, 3))
    assert count["by_op_type"] == {"Conv2D": expected}


def test_strided_conv2d_counts_the_output_positions_only():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(6, 3, strides=2, padding="same"),
        ]
    )
    assert _count(model, (1, 8, 8, 2))["dense_flops"] == 2 * 16 * 6 * 9 * 2


def test_transposed_conv_is_two_times_input_kernel_out():
    model = keras.Sequential(
        [
            keras.Input((3, 3, 4)),
            keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same"),
        ]
    )
    expected = 2 * (2 * 3 * 3 * 4) * (4 * 4 * 5)
    count = _count(model, (2, 3, 3, 4))
    assert count["by_op_type"] == {"Conv2DBackpropInput": expected}


def test_lstm_loop_body_counts_once_per_step():
    inputs = keras.Input((5, 8))
    model = keras.Model(inputs, keras.layers.LSTM(16)(inputs))
    # Per step: x @ W (8 x 64) and h @ U (16 x 64); the step Keras traces
    # outside the loop for shapes is not run, so it is not counted.
    expected = 5 * 2 * 2 * (8 * 64 + 16 * 64)
    count = _count(model, (2, 5, 8))
    assert count["dense_flops"] == expected
    assert count["uncounted"] == {}


def test_einsum_counts_every_index():
    @tf.function
    def product(a, b):
        return tf.einsum("bij,bjk->bik", a, b)

    concrete = product.get_concrete_function(
        tf.TensorSpec([2, 3, 4]), tf.TensorSpec([2, 4, 5])
    )
    assert flops.count_dense_flops(concrete).total == 2 * 2 * 3 * 4 * 5
