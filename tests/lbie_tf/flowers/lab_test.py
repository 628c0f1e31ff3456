"""Tests of the sRGB <-> Lab conversion of the flowers experiment."""

import numpy as np
import pytest
import tensorflow as tf
from skimage import color

from lbie_tf.flowers import lab

EDGE_COLOURS = np.array(
    [
        [0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 1.0],
        [1.0, 0.0, 1.0],
        [1.0, 1.0, 0.0],
        [0.5, 0.5, 0.5],
        # Around the companding threshold 0.04045 and f's (6/29)^3.
        [0.04045, 0.04045, 0.04045],
        [0.04, 0.05, 0.03],
        [0.001, 0.002, 0.003],
    ]
)


def _random_rgb(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape)


def reference_rgb_to_lab(rgb):
    """An independent NumPy reference written from the released formulas."""
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(
        rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4
    )
    r, g, b = linear[..., 0], linear[..., 1], linear[..., 2]
    x = 0.412453 * r + 0.357580 * g + 0.180423 * b
    y = 0.212671 * r + 0.715160 * g + 0.072169 * b
    z = 0.019334 * r + 0.119193 * g + 0.950227 * b

    def f(t):
        return np.where(
            t > (6 / 29) ** 3,
            np.cbrt(t),
            t / (3 * (6 / 29) ** 2) + 4 / 29,
        )

    f_x, f_y, f_z = f(x / 0.950456), f(y / 1.0), f(z / 1.088754)
    return np.stack(
        [116 * f_y - 16, 500 * (f_x - f_y), 200 * (f_y - f_z)], axis=-1
    )


def test_hand_computed_pure_red():
    # Pure red: linear (1, 0, 0), so XYZ is the matrix's first row.
    x, y, z = 0.412453, 0.212671, 0.019334
    f_x = (x / 0.950456) ** (1 / 3)
    f_y = y ** (1 / 3)
    f_z = (z / 1.088754) ** (1 / 3)
    expected = [116 * f_y - 16, 500 * (f_x - f_y), 200 * (f_y - f_z)]
    # The familiar values of sRGB red in Lab.
    np.testing.assert_allclose(expected, [53.24, 80.09, 67.20], atol=0.01)
    ours = lab.rgb_to_lab(tf.constant([1.0, 0.0, 0.0], tf.float64)).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-9)


def test_matches_the_numpy_reference_in_float64():
    rgb = np.concatenate([_random_rgb((200, 3)), EDGE_COLOURS])
    ours = lab.rgb_to_lab(tf.constant(rgb, tf.float64)).numpy()
    np.testing.assert_allclose(ours, reference_rgb_to_lab(rgb), atol=1e-9)


def test_float32_stays_within_single_precision():
    rgb = _random_rgb((4, 8, 8, 3), seed=1).astype("float32")
    ours = lab.rgb_to_lab(rgb)
    assert ours.dtype == tf.float32 and ours.shape == (4, 8, 8, 3)
    np.testing.assert_allclose(
        ours.numpy(), reference_rgb_to_lab(rgb), atol=2e-4
    )


def test_agrees_with_scikit_image():
    # skimage uses the same sRGB companding and matrix, but its D65 white
    # point is rounded to (0.95047, 1, 1.08883) and its f(t) to the
    # constants 0.008856 and 7.787. These move a and b by up to ~0.01 (a
    # just visible colour difference is ~1), and RGB by up to ~1e-3 in dark
    # colours, where the sRGB curve is steepest; hence the tolerances.
    rgb = np.concatenate([_random_rgb((500, 3), seed=2), EDGE_COLOURS])
    ours = lab.rgb_to_lab(tf.constant(rgb, tf.float64)).numpy()
    np.testing.assert_allclose(ours, color.rgb2lab(rgb), atol=0.02)

    lab_values = color.rgb2lab(rgb)
    back = lab.lab_to_rgb(tf.constant(lab_values, tf.float64)).numpy()
    np.testing.assert_allclose(back, color.lab2rgb(lab_values), atol=1e-3)


def test_out_of_gamut_lab_is_clipped_like_scikit_image():
    lab_values = np.array([[50.0, 120.0, -120.0], [90.0, -100.0, 100.0]])
    ours = lab.lab_to_rgb(tf.constant(lab_values, tf.float64)).numpy()
    # skimage clips after the companding and we (the released code) before
    # it; both are monotonic, so they agree.
    np.testing.assert_allclose(ours, color.lab2rgb(lab_values), atol=1e-3)


def test_negative_z_is_not_clipped_before_the_matrix():
    # For L = 20, b = 90, f_z = f_y - b / 200 < 0. skimage sets f_z to 0
    # before inverting f (and warns); the released code clips only the
    # linear RGB, so the result differs from skimage's but stays an image.
    lab_values = tf.constant([[20.0, 0.0, 90.0]], tf.float64)
    ours = lab.lab_to_rgb(lab_values).numpy()
    assert ours.min() >= 0.0 and ours.max() <= 1.0
    f_y = 36.0 / 116.0
    f = np.array([f_y, f_y, f_y - 90.0 / 200.0])
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    xyz = xyz * np.array([0.950456, 1.0, 1.088754])
    matrix = np.array(
        [
            [0.412453, 0.212671, 0.019334],
            [0.357580, 0.715160, 0.119193],
            [0.180423, 0.072169, 0.950227],
        ]
    )
    linear = np.clip(xyz @ np.linalg.inv(matrix), 0.0, 1.0)
    expected = np.where(
        linear <= 0.04045 / 12.92,
        12.92 * linear,
        1.055 * linear ** (1 / 2.4) - 0.055,
    )
    np.testing.assert_allclose(ours[0], expected, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip(dtype):
    rgb = np.concatenate([_random_rgb((1000, 3), seed=3), EDGE_COLOURS])
    rgb = rgb.astype(dtype)
    back = lab.lab_to_rgb(lab.rgb_to_lab(rgb)).numpy()
    # float64 is exact up to the sRGB standard's own seam: its two pieces
    # differ by 3e-8 at the threshold 0.04045, which an edge colour sits on.
    atol = 1e-4 if dtype == "float32" else 1e-7
    np.testing.assert_allclose(back, rgb, atol=atol)


def test_edge_colours():
    values = lab.rgb_to_lab(tf.constant(EDGE_COLOURS[:2], tf.float64)).numpy()
    np.testing.assert_allclose(values[0], [0.0, 0.0, 0.0], atol=1e-12)
    # White is the white point: L = 100 and a = b = 0 up to the rounding of
    # the matrix rows' sums against the white point.
    np.testing.assert_allclose(values[1], [100.0, 0.0, 0.0], atol=0.01)


def test_normalisation_and_inverses():
    lightness = tf.constant([0.0, 50.0, 100.0])
    np.testing.assert_allclose(
        lab.normalize_lightness(lightness), [-1.0, 0.0, 1.0]
    )
    np.testing.assert_allclose(
        lab.denormalize_lightness(lab.normalize_lightness(lightness)),
        lightness,
    )
    ab = tf.constant([-110.0, 0.0, 55.0])
    np.testing.assert_allclose(lab.normalize_ab(ab), [-1.0, 0.0, 0.5])
    np.testing.assert_allclose(lab.denormalize_ab(lab.normalize_ab(ab)), ab)


def test_runs_in_tf_data_and_tf_function():
    rgb = _random_rgb((2, 4, 4, 3), seed=4).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(rgb).map(lab.rgb_to_lab)
    from_data = np.stack(list(dataset.as_numpy_iterator()))
    traced = tf.function(
        lab.lab_to_rgb,
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
    )
    np.testing.assert_allclose(traced(from_data), rgb, atol=1e-4)


def test_gradients_are_finite_at_black():
    rgb = tf.Variable(tf.zeros((1, 3)))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(lab.rgb_to_lab(rgb))
    assert np.all(np.isfinite(tape.gradient(total, rgb).numpy()))


def test_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="3 channels"):
        lab.rgb_to_lab(tf.zeros((2, 4)))
    with pytest.raises(ValueError, match="3 channels"):
        lab.lab_to_rgb(tf.zeros((2, 1)))
