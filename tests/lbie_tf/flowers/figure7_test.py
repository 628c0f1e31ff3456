"""Tests of the Figure 7 protocol and its picture."""

import os

import numpy as np
import pytest
from PIL import Image

from lbie_tf.flowers import consistency, figure7

PAINT = {
    "white": (245, 245, 240),
    "red": (220, 20, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 20),
    "blue": (30, 60, 220),
    "purple": (130, 40, 170),
}


def _flower(height=48, width=40):
    """A pink disc on foliage green."""
    rows, cols = np.mgrid[:height, :width]
    disc = (rows - height / 2) ** 2 + (cols - width / 2) ** 2 <= 15**2
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = (40, 140, 50)
    image[disc] = (240, 120, 170)
    return image


def _painter(color_of_caption):
    """A fake `colorize` that paints the flower region of its input."""

    def colorize(rgb, caption):
        assert rgb.dtype == np.uint8
        painted = rgb.copy()
        painted[consistency.flower_region(rgb)] = PAINT[
            color_of_caption(caption)
        ]
        return painted

    return colorize


def test_captions_are_the_papers_wording():
    assert figure7.figure7_captions() == [
        "the flower is white in color",
        "the flower is red in color",
        "the flower is orange in color",
        "the flower is yellow in color",
        "the flower is blue in color",
        "the flower is purple in color",
    ]
    for color, caption in zip(
        figure7.FIGURE7_COLORS, figure7.figure7_captions(), strict=True
    ):
        assert consistency.caption_colors(caption) == (color,)


def test_painting_the_asked_colour_hits_every_colour():
    rgb = _flower()
    results = figure7.run_figure7(_painter(lambda c: c.split()[3]), rgb)
    assert results["hit_rate"] == 1.0
    assert [e["color"] for e in results["per_color"]] == list(
        figure7.FIGURE7_COLORS
    )
    for entry in results["per_color"]:
        assert entry["dominant_color"] == entry["color"]
        assert entry["hit"] is True
        assert entry["image"].shape == rgb.shape
    np.testing.assert_array_equal(
        results["mask"], consistency.flower_region(rgb)
    )


def test_always_painting_red_hits_one_colour_in_six():
    results = figure7.run_figure7(_painter(lambda c: "red"), _flower())
    assert results["hit_rate"] == pytest.approx(1 / 6)
    hits = {e["color"]: e["hit"] for e in results["per_color"]}
    assert hits == {color: color == "red" for color in figure7.FIGURE7_COLORS}


def test_a_given_mask_is_the_region_judged():
    rgb = _flower()
    # Painting outside the given (empty-of-flower) mask changes nothing.
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    mask[:4] = True
    results = figure7.run_figure7(_painter(lambda c: c.split()[3]), rgb, mask)
    assert results["hit_rate"] == 0.0
    assert {e["dominant_color"] for e in results["per_color"]} == {"green"}


def test_a_colorize_that_returns_floats_is_refused():
    def colorize(rgb, caption):
        return rgb / 255.0

    with pytest.raises(ValueError, match="must be a uint8 RGB array"):
        figure7.run_figure7(colorize, _flower())


def test_luminance_grey_keeps_greys_and_weighs_green_most():
    grey = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (2, 1, 3))
    np.testing.assert_array_equal(figure7.luminance_grey(grey), grey)
    primaries = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    levels = figure7.luminance_grey(primaries)[0, :, 0]
    # sRGB encodings of the luminances 0.212671, 0.715160 and 0.072169.
    np.testing.assert_array_equal(levels, [127, 220, 76])


def test_panel_is_a_png_of_seven_panels(tmp_path):
    rgb = _flower(height=48, width=40)
    results = figure7.run_figure7(_painter(lambda c: "red"), rgb)
    path = tmp_path / "figure7.png"
    assert figure7.figure7_panel(rgb, results, path) == path
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.size == (7 * 40, 48 + figure7.LABEL_HEIGHT)
        pixels = np.asarray(picture.convert("RGB"))
    # The first panel is the grey input; the second the red result.
    np.testing.assert_array_equal(pixels[:48, :40], figure7.luminance_grey(rgb))
    np.testing.assert_array_equal(
        pixels[:48, 40:80], results["per_color"][0]["image"]
    )
    # Something is written in every label strip.
    for index in range(7):
        strip = pixels[48:, index * 40 : (index + 1) * 40]
        assert (strip != 255).any(), index
    assert os.listdir(tmp_path) == ["figure7.png"]


def test_panel_refuses_a_result_of_another_shape(tmp_path):
    rgb = _flower()
    results = figure7.run_figure7(_painter(lambda c: "red"), rgb)
    results["per_color"][2]["image"] = rgb[:10]
    with pytest.raises(ValueError, match="expected the input's"):
        figure7.figure7_panel(rgb, results, tmp_path / "figure7.png")
    assert os.listdir(tmp_path) == []
