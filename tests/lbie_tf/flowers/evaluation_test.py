"""Tests for the flowers scores: the isoluminant palette and per-shape
colour accuracy."""

import numpy as np
import tensorflow as tf

from data_builders.cosal import vocabulary as cosal_vocabulary
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
        "cell_shapes": np.arange(9, dtype=np.int32),
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


class _PaletteModel:
    """Paints every pixel of colour label c + 1 with palette colour
    `mapping[c]`: a model whose errors are known."""

    def __init__(self, labels, mapping):
        palette = lab.normalize_ab(datasets.isoluminant_ab(6)).numpy()
        painted = np.concatenate([[0], np.asarray(mapping) + 1])
        self.ab = palette[painted[labels]].astype(np.float32)

    def __call__(self, inputs, training=False):
        return {"ab": self.ab[inputs["index"]]}


def test_accuracy_by_shape_counts_each_cell_under_its_shape_name():
    # Two 6 x 6 images, a 2 x 2 cell each; image 0's cells 0 and 1 hold
    # shapes 0 and 8, image 1's cell 0 shape 0 (cell 1 empty).
    labels = np.zeros((2, 6, 6), np.int64)
    labels[0, 0:2, 0:2] = 1  # colour 0
    labels[0, 0:2, 2:4] = 3  # colour 2
    labels[1, 0:2, 0:2] = 2  # colour 1
    cell_colors = np.zeros((2, 9), np.int32)
    cell_colors[0, :2] = [0, 2]
    cell_colors[1, 0] = 1
    cell_shapes = np.full((2, 9), 4, np.int32)
    cell_shapes[0, :2] = [0, 8]
    cell_shapes[1, :2] = [0, 8]
    # Colour 0 is painted right, colours 1 and 2 wrong.
    model = _PaletteModel(labels, [0, 3, 4, 3, 4, 5])
    dataset = [
        (
            {"index": tf.constant([0, 1])},
            {
                "ab": tf.zeros((2, 6, 6, 2)),
                "color_labels": tf.constant(labels),
                "cell_colors": tf.constant(cell_colors),
                "cell_shapes": tf.constant(cell_shapes),
            },
        )
    ]
    results = evaluation.evaluate_model(
        model, dataset, "cosal_isoluminant", num_colors=6
    )
    assert results["num_shapes"] == 3
    assert results["shape_color_accuracy"] == 1 / 3
    by_shape = results["shape_color_accuracy_by_shape"]
    assert list(by_shape) == list(cosal_vocabulary.SHAPE_NAMES)
    names = cosal_vocabulary.SHAPE_NAMES
    # Shape 0: right in image 0, wrong in image 1; shape 8: wrong.
    assert by_shape[names[0]] == 0.5 and by_shape[names[8]] == 0.0
    assert all(by_shape[name] is None for name in names[1:8])
