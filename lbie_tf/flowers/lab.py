"""sRGB <-> CIE Lab in TensorFlow ops, with the released code's constants.

The flowers generator reads the lightness L and predicts the chroma ab
(paper section 4.3: "the predicted ab color channels ... combined with the
grayscale source image"). The released code converts with the sRGB
companding, the sRGB/D65 XYZ matrix and the white point below, and feeds
the networks L / 50 - 1 and ab / 110; the inverse clips linear RGB to
[0, 1]. The functions take and return float tensors whose last axis holds
the three channels, so they run in tf.data and inside a SavedModel alike.
"""

import numpy as np
import tensorflow as tf

# sRGB companding (IEC 61966-2-1).
SRGB_THRESHOLD = 0.04045
LINEAR_THRESHOLD = SRGB_THRESHOLD / 12.92
# xyz = rgb_linear @ RGB_TO_XYZ: one row per linear R, G and B.
RGB_TO_XYZ = (
    (0.412453, 0.212671, 0.019334),
    (0.357580, 0.715160, 0.119193),
    (0.180423, 0.072169, 0.950227),
)
# Its exact inverse, for `lab_to_rgb`.
XYZ_TO_RGB = tuple(
    tuple(float(value) for value in row)
    for row in np.linalg.inv(np.array(RGB_TO_XYZ))
)
WHITE_POINT = (0.950456, 1.0, 1.088754)
# f(t) = t^(1/3) above DELTA^3, else t / (3 DELTA^2) + 4/29.
DELTA = 6.0 / 29.0
# The networks see L / L_SCALE - 1 and ab / AB_SCALE.
L_SCALE = 50.0
AB_SCALE = 110.0


def _float(x):
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    return x


def _check_channels(x, name):
    if x.shape.rank is not None and x.shape[-1] not in (None, 3):
        raise ValueError(
            f"`{name}` must have 3 channels on its last axis; received "
            f"shape {x.shape}."
        )


def _constant(values, dtype):
    return tf.constant(values, dtype=dtype)


def _f(t):
    delta = tf.cast(DELTA, t.dtype)
    linear = t / (3.0 * delta**2) + 4.0 / 29.0
    # The maximum keeps the cube root's argument positive on the branch
    # that is not taken, so that its gradient stays finite.
    cube_root = tf.pow(tf.maximum(t, delta**3), 1.0 / 3.0)
    return tf.where(t > delta**3, cube_root, linear)


def _f_inverse(f):
    delta = tf.cast(DELTA, f.dtype)
    return tf.where(f > delta, f**3, 3.0 * delta**2 * (f - 4.0 / 29.0))


def rgb_to_lab(rgb):
    """sRGB in [0, 1] -> CIE Lab (L in [0, 100]).

    Args:
      rgb: float tensor (..., 3); an integer tensor is cast to float32 but
        must already be scaled to [0, 1].

    Returns:
      A tensor (..., 3) of L, a, b, of the input's float dtype.
    """
    rgb = _float(rgb)
    _check_channels(rgb, "rgb")
    dtype = rgb.dtype
    linear = tf.where(
        rgb <= SRGB_THRESHOLD,
        rgb / 12.92,
        tf.pow((tf.maximum(rgb, SRGB_THRESHOLD) + 0.055) / 1.055, 2.4),
    )
    xyz = tf.tensordot(linear, _constant(RGB_TO_XYZ, dtype), axes=1)
    f_x, f_y, f_z = tf.unstack(
        _f(xyz / _constant(WHITE_POINT, dtype)), num=3, axis=-1
    )
    return tf.stack(
        [116.0 * f_y - 16.0, 500.0 * (f_x - f_y), 200.0 * (f_y - f_z)],
        axis=-1,
    )


def lab_to_rgb(lab):
    """CIE Lab -> sRGB in [0, 1], the inverse of `rgb_to_lab`.

    Linear RGB is clipped to [0, 1] before the companding, as in the
    released code, so that Lab values outside the sRGB gamut (a network's
    free prediction) still give a valid image.

    Args:
      lab: float tensor (..., 3) of L, a, b.

    Returns:
      A tensor (..., 3) of sRGB values in [0, 1].
    """
    lab = _float(lab)
    _check_channels(lab, "lab")
    dtype = lab.dtype
    lightness, a, b = tf.unstack(lab, num=3, axis=-1)
    f_y = (lightness + 16.0) / 116.0
    f = tf.stack([f_y + a / 500.0, f_y, f_y - b / 200.0], axis=-1)
    xyz = _f_inverse(f) * _constant(WHITE_POINT, dtype)
    linear = tf.tensordot(xyz, _constant(XYZ_TO_RGB, dtype), axes=1)
    linear = tf.clip_by_value(linear, 0.0, 1.0)
    return tf.where(
        linear <= LINEAR_THRESHOLD,
        linear * 12.92,
        1.055 * tf.pow(tf.maximum(linear, LINEAR_THRESHOLD), 1.0 / 2.4) - 0.055,
    )


def normalize_lightness(lightness):
    """L in [0, 100] -> [-1, 1], the generator's input."""
    return _float(lightness) / L_SCALE - 1.0


def denormalize_lightness(lightness):
    """The inverse of `normalize_lightness`."""
    return (_float(lightness) + 1.0) * L_SCALE


def normalize_ab(ab):
    """ab -> ab / 110 (roughly [-1, 1]), the generator's tanh target."""
    return _float(ab) / AB_SCALE


def denormalize_ab(ab):
    """The inverse of `normalize_ab`."""
    return _float(ab) * AB_SCALE
