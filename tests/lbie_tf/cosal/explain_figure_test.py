"""Tests of the Figure 5 style attention picture."""

import numpy as np
import pytest

from lbie_tf.cosal import explain_figure

SENTENCES = tuple(f"sentence number {k}" for k in range(9))


def _planted(num_regions_side, num_steps, chosen, rng):
    """Attention weights (regions, 9, T) in [0, 1) plus 5 on the sentence
    `chosen[t, row, col]` in every region of cell (row, col)."""
    side = num_regions_side
    weights = rng.random((side * side, 9, num_steps))
    per_cell = side // 3
    for region in range(side * side):
        row, col = divmod(region, side)
        for step in range(num_steps):
            k = chosen[step, row // per_cell, col // per_cell]
            weights[region, k, step] += 5.0
    return weights


def test_cell_attention_is_identity_on_a_3x3_map():
    weights = np.arange(9 * 9 * 2, dtype=np.float64).reshape(9, 9, 2) / 10
    per_cell = explain_figure.cell_attention(weights)
    for row in range(3):
        for col in range(3):
            np.testing.assert_allclose(
                per_cell[row, col], weights[3 * row + col]
            )


def test_cell_attention_averages_2x2_regions_of_a_6x6_map():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(36, 9, 3))
    per_cell = explain_figure.cell_attention(weights)
    grid = weights.reshape(6, 6, 9, 3)
    for row in range(3):
        for col in range(3):
            block = grid[2 * row : 2 * row + 2, 2 * col : 2 * col + 2]
            np.testing.assert_allclose(
                per_cell[row, col], block.reshape(4, 9, 3).mean(axis=0)
            )


def test_a_1x1_map_gives_every_cell_its_only_region():
    weights = np.random.default_rng(1).random((1, 9, 2))
    per_cell = explain_figure.cell_attention(weights)
    for row in range(3):
        for col in range(3):
            np.testing.assert_allclose(per_cell[row, col], weights[0])


@pytest.mark.parametrize("side", [3, 6])
def test_attended_sentences_finds_the_largest_weight(side):
    rng = np.random.default_rng(side)
    chosen = rng.integers(0, 9, size=(4, 3, 3))
    weights = _planted(side, 4, chosen, rng)
    np.testing.assert_array_equal(
        explain_figure.attended_sentences(weights), chosen
    )


def test_negative_raw_scores_still_pick_the_largest():
    # The released CoSaL attention has no softmax: weights can be negative.
    weights = -np.ones((9, 9, 1))
    weights[:, 4, 0] = -0.5
    choices = explain_figure.attended_sentences(weights)
    assert (choices == 4).all()


@pytest.mark.parametrize(
    "weights, kwargs, fragment",
    [
        (np.zeros((9, 9)), {}, "shape (regions, sentences, steps)"),
        (np.zeros((10, 9, 2)), {}, "not a square number"),
        (np.zeros((12, 9, 2)), {"map_shape": (3, 3)}, "12"),
        (np.zeros((9, 9, 2)), {"grid_size": 0}, "grid_size"),
    ],
)
def test_bad_attention_arguments_raise(weights, kwargs, fragment):
    with pytest.raises(ValueError) as info:
        explain_figure.cell_attention(weights, **kwargs)
    assert fragment in str(info.value)


def test_non_square_map_with_map_shape():
    rng = np.random.default_rng(2)
    weights = rng.random((3 * 6, 9, 1))
    per_cell = explain_figure.cell_attention(weights, map_shape=(3, 6))
    grid = weights.reshape(3, 6, 9, 1)
    np.testing.assert_allclose(
        per_cell[1, 2], grid[1, 4:6].mean(axis=0), rtol=1e-12
    )


def _color_pixels(picture, rgb):
    return int((picture == np.asarray(rgb, np.uint8)).all(axis=-1).sum())


@pytest.mark.parametrize("num_steps", [1, 2, 4])
def test_render_draws_one_colour_per_step(num_steps):
    rng = np.random.default_rng(num_steps)
    chosen = rng.integers(0, 9, size=(num_steps, 3, 3))
    weights = _planted(6, num_steps, chosen, rng)
    image = np.full((48, 48, 3), 255, np.uint8)
    picture = explain_figure.render_explanation(
        image, weights, SENTENCES, scale=8
    )
    assert picture.dtype == np.uint8 and picture.ndim == 3
    # The enlarged image (384 px) and the sentence list both fit.
    assert picture.shape[0] >= 384 and picture.shape[1] > 384
    for step, color in enumerate(explain_figure.STEP_COLORS):
        # Each step's swatch appears in all 9 cells (and in the list and
        # legend); colours of steps the model does not have never appear.
        if step < num_steps:
            assert _color_pixels(picture, color) > 9 * 20
        else:
            assert _color_pixels(picture, color) == 0


def test_render_shows_the_image_faded_under_the_grid():
    image = np.full((48, 48, 3), 255, np.uint8)
    image[16:32, 16:32] = (0, 0, 255)
    weights = np.random.default_rng(3).random((9, 9, 1))
    picture = explain_figure.render_explanation(
        image, weights, SENTENCES, scale=4
    )
    # 45% opacity: blue 255 stays, red and green go from 0 to 255 * 0.55.
    faded_blue = (140, 140, 255)
    assert _color_pixels(picture, faded_blue) > 0.5 * (16 * 4) ** 2


@pytest.mark.parametrize(
    "image, weights, sentences, scale, fragment",
    [
        (np.zeros((48, 48)), np.zeros((9, 9, 1)), SENTENCES, 8, "image"),
        (np.zeros((48, 48, 3)), np.zeros((9, 8, 1)), SENTENCES, 8, "len("),
        (np.zeros((48, 48, 3)), np.zeros((9, 9, 1)), SENTENCES, 0, "scale"),
        (np.zeros((48, 48, 3)), np.zeros((9, 9, 1)), SENTENCES, 2.5, "scale"),
    ],
)
def test_render_rejects_bad_arguments(
    image, weights, sentences, scale, fragment
):
    with pytest.raises(ValueError) as info:
        explain_figure.render_explanation(image, weights, sentences, scale)
    assert fragment in str(info.value)


def test_cell_stop_steps_votes_per_cell():
    steps = np.zeros((6, 6), np.int64)
    steps[0:2, 2:4] = 3  # cell (0, 1): all four regions
    steps[2, 4] = 2  # cell (1, 2): one of four regions, ties go first
    steps[4:6, 0:2] = [[1, 1], [1, 2]]  # cell (2, 0): three of four
    per_cell = explain_figure.cell_stop_steps(steps)
    expected = np.zeros((3, 3), np.int64)
    expected[0, 1], expected[2, 0] = 3, 1
    np.testing.assert_array_equal(per_cell, expected)
    pixels = np.repeat(np.repeat(steps, 8, axis=0), 8, axis=1)
    np.testing.assert_array_equal(
        explain_figure.cell_stop_steps(pixels), expected
    )


def test_render_greys_the_steps_after_each_cells_stop():
    rng = np.random.default_rng(5)
    chosen = rng.integers(0, 9, size=(4, 3, 3))
    weights = _planted(6, 4, chosen, rng)
    image = np.full((48, 48, 3), 255, np.uint8)
    plain = explain_figure.render_explanation(image, weights, SENTENCES)
    all_first = explain_figure.render_explanation(
        image, weights, SENTENCES, stop_steps=np.zeros((3, 3), np.int64)
    )
    all_last = explain_figure.render_explanation(
        image, weights, SENTENCES, stop_steps=np.full((3, 3), 3)
    )
    grey = explain_figure._UNUSED_RGB
    # Antialiased text has a few pixels of that grey anyway; the greyed
    # swatches add hundreds.
    baseline = _color_pixels(plain, grey)
    assert _color_pixels(all_last, grey) < baseline + 20
    # Stopping at step 1 greys steps 2..4 in all 9 cells.
    assert _color_pixels(all_first, grey) > baseline + 9 * 3 * 20
    last_color = explain_figure.STEP_COLORS[3]
    assert _color_pixels(all_first, last_color) < _color_pixels(
        all_last, last_color
    )


@pytest.mark.parametrize(
    "stop_steps",
    [np.zeros((2, 2), np.int64), np.full((3, 3), 4), np.zeros((3, 3))],
)
def test_render_rejects_bad_stop_steps(stop_steps):
    weights = np.zeros((36, 9, 4))
    with pytest.raises(ValueError, match="stop_steps"):
        explain_figure.render_explanation(
            np.zeros((48, 48, 3), np.uint8),
            weights,
            SENTENCES,
            stop_steps=stop_steps,
        )


def test_cell_stop_steps_rejects_non_integer_maps():
    with pytest.raises(ValueError, match="integer map"):
        explain_figure.cell_stop_steps(np.zeros((6, 6)))
