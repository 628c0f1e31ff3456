"""Tests of the flowers panels (TensorBoard and results pictures)."""

import numpy as np
import tensorflow as tf

from lbie_tf.flowers import summaries


def _batch(size=4):
    rng = np.random.default_rng(0)
    inputs = {
        "lightness": tf.constant(
            rng.uniform(-1, 1, (2, size, size, 1)), tf.float32
        )
    }
    targets = {
        "ab": tf.constant(
            rng.uniform(-0.5, 0.5, (2, size, size, 2)), tf.float32
        ),
        "caption": tf.constant([b"a red circle", b"a blue square"]),
    }
    return inputs, targets


def test_rows_hold_the_panels_side_by_side_with_the_caption_under():
    inputs, targets = _batch()
    colorized = np.full((2, 4, 4, 3), 200, np.uint8)
    baseline = np.full((2, 4, 4, 3), 100, np.uint8)
    rows = summaries.grid_rows(inputs, targets, colorized, baseline)
    # Four 4-pixel panels with 4 px gaps; two 12 px caption lines.
    assert rows.shape == (2, 4 + 2 * 12, 4 * 4 + 3 * 4, 3)
    np.testing.assert_array_equal(rows[:, :4, 8:12], colorized)
    np.testing.assert_array_equal(rows[:, :4, 16:20], baseline)
    # The caption is drawn in black (anti-aliased) on white under them.
    assert rows[:, 4:].min() < 64 and rows[:, 4:].max() == 255


def test_scale_enlarges_every_panel_by_nearest_neighbour():
    inputs, targets = _batch()
    colorized = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3))
    colorized = colorized.astype(np.uint8)
    plain = summaries.grid_rows(inputs, targets, colorized)
    rows = summaries.grid_rows(
        inputs, targets, colorized, scale=3, caption_lines=1
    )
    assert rows.shape == (2, 12 + 12, 3 * 12 + 2 * 4, 3)
    for column in range(3):
        small = plain[:, :4, column * 8 : column * 8 + 4]
        large = rows[:, :12, column * 16 : column * 16 + 12]
        np.testing.assert_array_equal(large, small.repeat(3, 1).repeat(3, 2))
