"""Tests of the automatic caption-consistency protocol and image metrics."""

import json
import math

import numpy as np
import pytest

from lbie_tf.flowers import consistency

RED = (220, 20, 30)
YELLOW = (250, 220, 20)
PURPLE = (130, 40, 170)
WHITE = (245, 245, 240)
FOLIAGE = (40, 140, 50)


def _disc_mask(size=64, radius=20):
    rows, cols = np.mgrid[:size, :size]
    centre = (size - 1) / 2
    return (rows - centre) ** 2 + (cols - centre) ** 2 <= radius**2


def _disc_image(flower, background=FOLIAGE, size=64, radius=20):
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = background
    image[_disc_mask(size, radius)] = flower
    return image


def _one_pixel(rgb):
    return np.asarray(rgb, dtype=np.float64).reshape(1, 1, 3)


def test_red_disc_matches_a_red_caption_and_not_a_blue_one():
    image = _disc_image(RED)
    region = consistency.flower_region(image)
    assert consistency.dominant_color(image, region) == "red"
    assert consistency.hue_match(image, "this flower has red petals", region)
    assert consistency.hue_match(image, "blue petals", region) is False


def test_flower_region_leaves_out_green_foliage():
    image = _disc_image(RED)
    np.testing.assert_array_equal(
        consistency.flower_region(image), _disc_mask()
    )
    # Judged over the whole image, the foliage would win.
    assert consistency.dominant_color(image, None) == "green"


@pytest.mark.parametrize("background", [(10, 10, 10), (110, 110, 115)])
def test_flower_region_leaves_out_dark_and_grey_backgrounds(background):
    image = _disc_image(PURPLE, background=background)
    np.testing.assert_array_equal(
        consistency.flower_region(image), _disc_mask()
    )


def test_flower_region_is_the_whole_image_when_almost_nothing_remains():
    image = _disc_image(RED, radius=2)
    assert consistency.flower_region(image).all()


def test_white_flower():
    image = _disc_image(WHITE)
    region = consistency.flower_region(image)
    np.testing.assert_array_equal(region, _disc_mask())
    assert consistency.dominant_color(image, region) == "white"
    assert consistency.hue_match(image, "the petals are white", region)
    assert not consistency.hue_match(image, "the petals are yellow", region)


def test_a_flower_left_grey_has_no_dominant_colour_and_misses():
    original = _disc_image(RED)
    region = consistency.flower_region(original)
    grey = np.full_like(original, 90)
    # A few coloured pixels do not outvote a grey region.
    grey[32, 20:26] = RED
    assert consistency.dominant_color(grey, region) is None
    assert consistency.hue_match(grey, "red petals", region) is False


def test_a_caption_without_colour_is_none_and_left_out_of_the_rate():
    red, purple = _disc_image(RED), _disc_image(PURPLE)
    masks = [_disc_mask()] * 3
    assert consistency.hue_match(red, "a flower with big petals", None) is None
    rate = consistency.match_rate(
        [red, purple, red],
        ["red petals", "yellow petals", "it has round petals"],
        masks,
    )
    assert rate == {
        "match_rate": 0.5,
        "uniform_guess_rate": 1 / 8,
        "num_scored": 2,
        "num_without_colour": 1,
    }


def test_match_rate_of_captions_without_colour_is_none():
    rate = consistency.match_rate([_disc_image(RED)], ["big petals"], [None])
    assert rate["match_rate"] is None
    assert rate["num_scored"] == 0
    assert rate["num_without_colour"] == 1


def test_two_colour_captions_match_either_colour():
    caption = "red petals with a yellow center"
    assert consistency.caption_colors(caption) == ("red", "yellow")
    red_with_yellow_centre = _disc_image(RED)
    red_with_yellow_centre[_disc_mask(radius=6)] = YELLOW
    region = _disc_mask()
    assert consistency.dominant_color(red_with_yellow_centre, region) == "red"
    assert consistency.hue_match(red_with_yellow_centre, caption, region)
    assert consistency.hue_match(_disc_image(YELLOW), caption, region)
    assert not consistency.hue_match(_disc_image(PURPLE), caption, region)


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("this flower has reddish petals", ("red",)),
        ("the petals are light purple", ("purple",)),
        ("a yellow-orange flower", ("yellow", "orange")),
        ("pinkish petals", ("pink",)),
        ("Dark Red and pale PINK petals", ("red", "pink")),
        ("off-white petals", ("white",)),
        ("purple/blue petals, purple stamen", ("purple", "blue")),
        ("lilacs and blues", ("purple", "blue")),
        ("magenta petals", ("purple", "pink")),
        ("cream petals", ("white", "yellow")),
        ("crimson and maroon", ("red",)),
        (b"golden petals", ("yellow",)),
        ("white petals and green leaves", ("white",)),
        ("green sepals, bluish petals", ("blue",)),
        ("this flower is green in color", ("green",)),
        ("a rose shaped flower with long stems", ()),
        ("", ()),
    ],
)
def test_caption_colors(caption, expected):
    assert consistency.caption_colors(caption) == expected


def test_caption_colors_refuses_a_non_string():
    with pytest.raises(TypeError, match="caption must be"):
        consistency.caption_colors(3)


@pytest.mark.parametrize(
    "rgb, expected",
    [
        ((255, 192, 203), "pink"),
        ((255, 105, 180), "pink"),
        ((199, 21, 133), "pink"),
        ((220, 20, 60), "red"),
        ((128, 0, 0), "red"),
        ((255, 165, 0), "orange"),
        ((255, 215, 0), "yellow"),
        ((0, 128, 0), "green"),
        ((135, 206, 235), "blue"),
        ((0, 0, 255), "blue"),
        ((128, 0, 128), "purple"),
        ((200, 162, 200), "purple"),
        ((250, 250, 245), "white"),
        ((120, 120, 120), None),
        ((45, 8, 8), None),
        ((10, 10, 10), None),
    ],
)
def test_color_categories_of_named_colours(rgb, expected):
    index = consistency.color_categories(_one_pixel(rgb))[0, 0]
    found = None if index < 0 else consistency.COLOR_CATEGORIES[index]
    assert found == expected


@pytest.mark.parametrize("name, start, end", consistency.HUE_TABLE)
def test_hue_table_boundaries(name, start, end):
    def pixel_of_hue(degrees):
        # Full saturation and value: one channel 255, one 0, the third
        # placed along the hue circle's sextant.
        sextant, fraction = divmod(degrees / 60.0, 1.0)
        rising, falling = 255.0 * fraction, 255.0 * (1.0 - fraction)
        return [
            (255, rising, 0),
            (falling, 255, 0),
            (0, 255, rising),
            (0, falling, 255),
            (rising, 0, 255),
            (255, 0, falling),
        ][int(sextant) % 6]

    def category(degrees):
        index = consistency.color_categories(_one_pixel(pixel_of_hue(degrees)))[
            0, 0
        ]
        return consistency.COLOR_CATEGORIES[index]

    assert category(start) == name
    assert category((end - 0.5) % 360) == name
    assert category(end % 360) != name


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4), np.uint8), "shape"),
        (np.zeros((4, 4, 4), np.uint8), "shape"),
        (np.full((4, 4, 3), 300.0), "0..255"),
        (np.full((4, 4, 3), np.nan), "0..255"),
        (np.zeros((4, 4, 3), bool), "integers or floats"),
    ],
)
def test_bad_images_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        consistency.color_categories(bad)


def test_mismatched_masks_and_lengths_are_refused():
    image = _disc_image(RED)
    with pytest.raises(ValueError, match="mask must have"):
        consistency.dominant_color(image, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="one entry per image"):
        consistency.match_rate([image], ["red", "blue"], [None])


def test_psnr_of_identical_images_is_infinite():
    image = _disc_image(RED)
    assert consistency.psnr(image, image) == math.inf


def test_psnr_of_a_known_noise_image_follows_the_formula():
    rng = np.random.default_rng(0)
    reference = rng.integers(20, 236, size=(32, 48, 3)).astype(np.uint8)
    noise = rng.integers(-20, 21, size=reference.shape)
    image = (reference.astype(np.int64) + noise).astype(np.uint8)
    mean_squared_error = np.mean(noise.astype(np.float64) ** 2)
    expected = 10 * math.log10(255**2 / mean_squared_error)
    assert consistency.psnr(image, reference) == pytest.approx(expected)
    # A constant error of 5 levels: 10 log10(255^2 / 25).
    shifted = reference + np.uint8(5)
    assert consistency.psnr(shifted, reference) == pytest.approx(
        10 * math.log10(255**2 / 25)
    )


def test_ssim_of_identical_images_is_one():
    image = np.random.default_rng(1).integers(0, 256, (40, 40, 3), np.uint8)
    assert consistency.ssim(image, image) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_tf_image_ssim(seed):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 256, size=(37, 45, 3)).astype(np.uint8)
    # Correlated images, so that SSIM is far from 0 as well as from 1.
    noise = rng.normal(0, 10 + 20 * seed, size=reference.shape)
    image = np.clip(reference + noise, 0, 255).astype(np.uint8)
    expected = tf.image.ssim(
        tf.constant(image, tf.float32),
        tf.constant(reference, tf.float32),
        max_val=255.0,
        filter_size=11,
        filter_sigma=1.5,
        k1=0.01,
        k2=0.03,
    )
    assert consistency.ssim(image, reference) == pytest.approx(
        float(expected), abs=1e-4
    )


def test_ssim_refuses_images_smaller_than_the_window():
    image = np.zeros((10, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="at least 11"):
        consistency.ssim(image, image)


def test_colorfulness_of_a_grey_image_is_zero():
    grey = np.full((8, 8, 3), 128, dtype=np.uint8)
    grey[:4] = 30
    assert consistency.colorfulness(grey) == pytest.approx(0.0)


def test_colorfulness_of_a_red_and_blue_image_by_hand():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:, :2] = (255, 0, 0)
    image[:, 2:] = (0, 0, 255)
    # rg is 255 or 0: mean 127.5, std 127.5. yb is 127.5 (red) or -255
    # (blue): mean -63.75, std 191.25.
    expected = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(
        127.5**2 + 63.75**2
    )
    assert consistency.colorfulness(image) == pytest.approx(expected)
    assert expected == pytest.approx(272.619, abs=1e-3)


def test_summary_is_json_serialisable_and_caps_psnr():
    originals = [_disc_image(RED), _disc_image(YELLOW)]
    colorized = [originals[0], _disc_image(PURPLE)]
    captions = ["red petals", "yellow petals"]
    result = consistency.summary(colorized, originals, captions)
    json.dumps(result, allow_nan=False)
    assert result["num_images"] == 2
    assert result["num_psnr_capped"] == 1
    expected_psnr = (
        consistency.PSNR_CAP_DB + consistency.psnr(colorized[1], originals[1])
    ) / 2
    assert result["mean_psnr_db"] == pytest.approx(expected_psnr)
    assert result["mean_ssim"] == pytest.approx(
        (1.0 + consistency.ssim(colorized[1], originals[1])) / 2
    )
    assert result["mean_colorfulness_original"] == pytest.approx(
        np.mean([consistency.colorfulness(o) for o in originals])
    )
    assert result["match_rate"] == 0.5
    assert result["num_scored"] == 2
    assert result["num_without_colour"] == 0
    for key, value in result.items():
        assert type(value) in (float, int), key


def test_summary_refuses_an_empty_set():
    with pytest.raises(ValueError, match="at least one image"):
        consistency.summary([], [], [])


def test_protocol_states_the_table_the_lexicon_and_its_standing():
    protocol = consistency.PROTOCOL
    assert "no automatic number on Oxford-102" in protocol
    one_spaced = " ".join(protocol.split())
    for name, start, end in consistency.HUE_TABLE:
        assert f"{name} [{start:g}, {end:g})" in one_spaced
    words = set(protocol.replace(",", " ").replace(";", " ").split())
    assert set(consistency.LEXICON) <= words
