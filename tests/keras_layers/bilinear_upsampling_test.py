"""Tests of bilinear kernels and the bilinear-initialised transposed conv."""

import os
import tempfile

import keras
import numpy as np
import pytest

from keras_layers.bilinear_upsampling import (
    BilinearConv2DTranspose,
    BilinearInitializer,
    bilinear_kernel,
)
from tests.layer_checklist import run_layer_checklist


def _reference_filter(kernel_size, variant):
    """The 1-D filters as spec section 4 writes them."""
    if variant == "hu":
        s = kernel_size // 2
        return np.array(list(range(s)) + [s] + list(range(s - 1, 0, -1))) / s
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    return np.array([1 - abs(i - centre) / factor for i in range(kernel_size)])


def _reference_transpose(inputs, kernel, strides, padding):
    """Transposed convolution as a scatter of kernel copies, then a crop.

    `kernel` is (k, k, out, in) as in Keras; with "same" padding the crop
    before the output is max(k - s, 0) // 2, TensorFlow's split of the
    padding of the convolution this one transposes.
    """
    batch, height, width, _ = inputs.shape
    k = kernel.shape[0]
    full_h = max((height - 1) * strides + k, height * strides)
    full_w = max((width - 1) * strides + k, width * strides)
    full = np.zeros((batch, full_h, full_w, kernel.shape[2]))
    for i in range(height):
        for j in range(width):
            full[
                :, i * strides : i * strides + k, j * strides : j * strides + k
            ] += np.einsum("bc,xyoc->bxyo", inputs[:, i, j, :], kernel)
    if padding == "valid":
        out_h = (height - 1) * strides + max(k, strides)
        out_w = (width - 1) * strides + max(k, strides)
        return full[:, :out_h, :out_w]
    crop = max(k - strides, 0) // 2
    return full[
        :, crop : crop + height * strides, crop : crop + width * strides
    ]


@pytest.mark.parametrize(
    "kernel_size,expected",
    [
        (3, [0.5, 1.0, 0.5]),
        (4, [0.25, 0.75, 0.75, 0.25]),
        (5, [1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3]),
    ],
)
def test_fcn_kernel_values(kernel_size, expected):
    np.testing.assert_allclose(
        bilinear_kernel(kernel_size, "fcn"), np.outer(expected, expected)
    )


@pytest.mark.parametrize("kernel_size", [2, 4, 6, 64])
def test_hu_kernel_is_the_specs_filter(kernel_size):
    s = kernel_size // 2
    filter_1d = _reference_filter(kernel_size, "hu")
    assert filter_1d.shape == (2 * s,) and filter_1d[0] == 0
    assert filter_1d[s] == 1
    kernel = bilinear_kernel(kernel_size, "hu")
    assert kernel.dtype == np.float32
    np.testing.assert_allclose(kernel, np.outer(filter_1d, filter_1d))


@pytest.mark.parametrize("s", [1, 2, 4, 16])
def test_variants_are_the_same_tent_half_a_pixel_apart(s):
    def tent(x):
        return np.maximum(0.0, 1.0 - np.abs(x) / s)

    i = np.arange(2 * s)
    np.testing.assert_allclose(bilinear_kernel(2 * s, "hu")[s], tent(i - s))
    np.testing.assert_allclose(
        bilinear_kernel(2 * s, "fcn")[s], tent(i - s + 0.5) * tent(0.5)
    )


@pytest.mark.parametrize(
    "kernel_size,strides,variant,padding",
    [
        (4, 2, "fcn", "same"),
        (4, 2, "hu", "same"),
        (3, 2, "fcn", "same"),
        (8, 4, "hu", "same"),
        (5, 3, "fcn", "valid"),
        (2, 3, "hu", "same"),
        (4, 2, "hu", "valid"),
    ],
)
def test_layer_equals_numpy_transposed_convolution(
    kernel_size, strides, variant, padding
):
    inputs = np.arange(2 * 3 * 4 * 2, dtype="float32").reshape(2, 3, 4, 2)
    inputs = np.sin(inputs / 3)
    layer = BilinearConv2DTranspose(
        2, kernel_size, strides, variant=variant, padding=padding
    )
    outputs = np.asarray(layer(inputs))
    filter_1d = _reference_filter(kernel_size, variant)
    kernel = np.einsum("x,y,oc->xyoc", filter_1d, filter_1d, np.eye(2))
    np.testing.assert_allclose(np.asarray(layer.kernel), kernel, atol=1e-7)
    expected = _reference_transpose(inputs, kernel, strides, padding)
    assert outputs.shape == expected.shape
    assert layer.compute_output_shape(inputs.shape) == expected.shape
    np.testing.assert_allclose(outputs, expected, atol=1e-5)

    # The convolution itself (not just the initial kernel) matches: mix the
    # channels with a random kernel.
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal(kernel.shape).astype("float32")
    layer.kernel.assign(kernel)
    np.testing.assert_allclose(
        layer(inputs),
        _reference_transpose(inputs, kernel, strides, padding),
        atol=1e-4,
    )


@pytest.mark.parametrize("variant", ["fcn", "hu"])
@pytest.mark.parametrize("strides", [2, 4])
def test_constant_map_gives_constant_interior(variant, strides):
    inputs = np.full((1, 4, 5, 3), 2.5, "float32")
    outputs = np.asarray(
        BilinearConv2DTranspose(3, 2 * strides, strides, variant=variant)(
            inputs
        )
    )
    interior = outputs[:, strides:-strides, strides:-strides]
    np.testing.assert_allclose(interior, 2.5, rtol=1e-6)
    # The border is darker: the zero padding outside the map leaks in.
    assert outputs[0, 0, 0, 0] < 2.5


@pytest.mark.parametrize("strides", [2, 4, 8])
def test_hu_output_is_half_an_output_pixel_behind_fcn(strides):
    # Upsampling a ramp x[j] = j gives a ramp whose value at output pixel n
    # is the input coordinate it samples: (n + 0.5) / s - 0.5 for "fcn",
    # n / s - 0.5 for "hu".
    ramp = np.tile(np.arange(6, dtype="float32")[None, :], (6, 1))
    inputs = ramp[None, :, :, None]
    outputs = {
        variant: np.asarray(
            BilinearConv2DTranspose(1, 2 * strides, strides, variant=variant)(
                inputs
            )
        )[0, 2 * strides, strides:-strides, 0]
        for variant in ("fcn", "hu")
    }
    n = np.arange(strides, 6 * strides - strides)
    np.testing.assert_allclose(
        outputs["fcn"], (n + 0.5) / strides - 0.5, atol=1e-5
    )
    np.testing.assert_allclose(outputs["hu"], n / strides - 0.5, atol=1e-5)


def test_initializer_in_a_plain_conv2d_transpose():
    inputs = np.random.default_rng(1).standard_normal((2, 3, 3, 2))
    inputs = inputs.astype("float32")
    plain = keras.layers.Conv2DTranspose(
        2,
        8,
        strides=4,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearInitializer("hu"),
    )
    ours = BilinearConv2DTranspose(2, 8, 4, variant="hu")
    np.testing.assert_allclose(plain(inputs), ours(inputs), atol=1e-5)

    model = keras.Sequential([keras.Input((3, 3, 2)), plain])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "plain.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    initializer = reloaded.layers[0].kernel_initializer
    assert isinstance(initializer, BilinearInitializer)
    assert initializer.variant == "hu"


def test_initializer_broadcasts_one_input_channel():
    kernel = np.asarray(BilinearInitializer("fcn")((4, 4, 3, 1)))
    for c in range(3):
        np.testing.assert_allclose(kernel[:, :, c, 0], bilinear_kernel(4))


def test_frozen_kernel_and_bias():
    layer = BilinearConv2DTranspose(
        2, 4, 2, use_bias=True, trainable_kernel=False
    )
    layer.build([None, 3, 3, 2])  # build() accepts lists too.
    assert [w.name for w in layer.trainable_weights] == ["bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["kernel"]


@pytest.mark.parametrize("variant", ["fcn", "hu"])
def test_checklist(variant):
    inputs = np.arange(2 * 3 * 3 * 2, dtype="float32").reshape(2, 3, 3, 2)
    run_layer_checklist(
        lambda: BilinearConv2DTranspose(
            2, 4, 2, variant=variant, use_bias=True
        ),
        inputs / 10,
        (2, 6, 6, 2),
    )


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"filters": -1}, "filters"),
        ({"filters": 0}, "filters"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": 2.5}, "kernel_size"),
        ({"strides": 0}, "strides"),
        ({"variant": "cubic"}, "variant"),
        ({"variant": "hu", "kernel_size": 3}, "kernel_size"),
        ({"padding": "full"}, "padding"),
    ],
)
def test_bad_arguments(kwargs, name):
    arguments = {"filters": 2, "kernel_size": 4, "strides": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        BilinearConv2DTranspose(**arguments)


def test_bad_inputs():
    with pytest.raises(ValueError, match="filters"):
        BilinearConv2DTranspose(3, 4, 2)(np.zeros((1, 2, 2, 2), "float32"))
    with pytest.raises(ValueError, match="rank-4|ndim"):
        BilinearConv2DTranspose(2, 4, 2)(np.zeros((1, 2, 2), "float32"))
    with pytest.raises(ValueError, match="variant"):
        BilinearInitializer("nearest")
    with pytest.raises(ValueError, match="in_channels"):
        BilinearInitializer()((4, 4, 3, 2))
    with pytest.raises(ValueError, match="kernel_size"):
        bilinear_kernel(5, "hu")


@pytest.mark.parametrize(
    "batch, height, width, in_channels, out_channels, strides",
    [
        (2, 3, 3, 8, 8, 16),  # the original family's head
        (2, 6, 6, 7, 7, 8),  # the paper family's head
        (1, 4, 5, 2, 3, 3),  # odd stride, non-square
        (2, 2, 3, 4, 4, 1),
    ],
)
@pytest.mark.parametrize(
    "dtype, tolerance", [("float64", 1e-6), ("float32", 1e-5)]
)
def test_taps_match_the_transposed_convolution_and_its_gradients(
    batch, height, width, in_channels, out_channels, strides, dtype, tolerance
):
    """transposed_conv_by_taps computes ops.conv_transpose's sums: outputs
    and both gradients agree on random inputs (relative to their scale;
    float64 shows the formulas are the same, float32 the rounding)."""
    import tensorflow as tf

    from keras_layers.bilinear_upsampling import transposed_conv_by_taps

    rng = np.random.default_rng(strides)
    inputs = tf.constant(rng.normal(size=(batch, height, width, in_channels)))
    inputs = tf.cast(inputs, dtype)
    kernel = tf.cast(
        rng.normal(size=(2 * strides, 2 * strides, out_channels, in_channels)),
        dtype,
    )
    upstream = tf.cast(
        rng.normal(
            size=(batch, strides * height, strides * width, out_channels)
        ),
        dtype,
    )

    def values_and_gradients(function):
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel])
            outputs = function(inputs, kernel)
            loss = tf.reduce_sum(outputs * upstream)
        return [outputs, *tape.gradient(loss, [inputs, kernel])]

    old = values_and_gradients(
        tf.function(
            lambda x, k: keras.ops.conv_transpose(
                x, k, strides=strides, padding="same"
            )
        )
    )
    new = values_and_gradients(
        lambda x, k: transposed_conv_by_taps(x, k, strides)
    )
    for name, a, b in zip(
        ("outputs", "d inputs", "d kernel"), old, new, strict=True
    ):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, name
        assert np.max(np.abs(a - b)) <= tolerance * np.max(np.abs(a)), name


def test_layer_takes_the_taps_only_for_kernel_two_strides_same():
    from unittest import mock

    from keras_layers import bilinear_upsampling

    inputs = np.arange(2 * 3 * 3 * 2, dtype="float32").reshape(2, 3, 3, 2)
    with mock.patch.object(
        bilinear_upsampling,
        "transposed_conv_by_taps",
        wraps=bilinear_upsampling.transposed_conv_by_taps,
    ) as taps:
        BilinearConv2DTranspose(2, 8, 4)(inputs)
        assert taps.call_count == 1
        BilinearConv2DTranspose(2, 3, 2)(inputs)
        BilinearConv2DTranspose(2, 8, 4, padding="valid")(inputs)
        assert taps.call_count == 1
