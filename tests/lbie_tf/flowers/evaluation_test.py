"""Tests for the flowers scores: the isoluminant palette and per-shape
colour accuracy."""

import numpy as np
import tensorflow as tf

from lbie_tf.flowers import datasets, evaluation, lab


def test_isoluminant_palette_has_distinct_colours():
    ab = datasets.isoluminant_ab(6)
    assert ab.shape == (7, 2)
    np.testing.assert_array_equal(ab[0], 0.0)
    np.testing.assert_allclose(
        np.linalg.norm(ab[1:], axis=-1), datasets.ISOLUMINANT_CHROMA, 1e-5
    )
    distances = np.linalg.norm(ab[1:, None] - ab[None, 1:], axis=-1)
    assert distances[~np.eye(6, dtype=bool)].min() > 30


def test_cosal_inputs_carry_no_colour_in_their_lightness():
    labels = np.array([[0, 1, 2], [3, 4, 5], [6, 0, 1]], np.uint8)
    example = {
        "color_labels": labels,
        "sentence_text": tf.constant(["circle is red"] * 9),
        "cell_colors": np.zeros(9, np.int32),
    }
    loaded = datasets._cosal_loader(6)(example)
    lightness = loaded["lightness"].numpy()[..., 0]
    shapes = labels > 0
    # Exactly one value on every shape, whatever its colour.
    assert np.unique(lightness[shapes]).size == 1
    assert np.all(lightness[~shapes] > lightness[shapes][0])
    palette = lab.normalize_ab(datasets.isoluminant_ab(6)).numpy()
    np.testing.assert_allclose(loaded["ab"].numpy(), palette[labels])
    assert loaded["captions"].shape == (1,)


def test_shape_colors_read_the_nearest_palette_colour_per_cell():
    size, cell = 6, 2
    labels = np.zeros((1, size, size), np.int64)
    labels[0, 0:2, 0:2] = 3  # cell 0: colour 2
    labels[0, 4:6, 4:6] = 1  # cell 8: colour 0
    palette = lab.normalize_ab(datasets.isoluminant_ab(6)).numpy()
    ab = np.zeros((1, size, size, 2), np.float32)
    ab[0, 0:2, 0:2] = palette[3] * 0.8  # faded, still nearest colour 2
    ab[0, 4:6, 4:6] = palette[2]  # colour 1, wrong
    colors = evaluation.shape_colors(ab, labels, 6)
    assert colors.tolist() == [[2, -1, -1, -1, -1, -1, -1, -1, 1]]
    assert cell == size // evaluation.GRID_SIZE
