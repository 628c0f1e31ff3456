"""Scores colourised flowers without people: whether the flower's dominant
colour is one its caption names, with PSNR, SSIM and colourfulness.

Automatic consistency with the caption (this project's protocol)
-----------------------------------------------------------------
The paper (section 4.3, Table 4) rates consistency with the caption by
people on Mechanical Turk; no automatic number on Oxford-102 has been
published. Later language-based colourisation papers report PSNR, SSIM,
LPIPS, FID and colourfulness instead. The protocol below is this project's
own: its numbers are not comparable with Table 4.

What is scored. For each colourised image and its caption: whether the
dominant colour category of the flower region is a colour the caption
names; PSNR (data range 255) and SSIM against the original colour image;
the colourfulness of the colourised and of the original image.

Pixel categories. From the 0..255 RGB values of a pixel: value
V = max / 255, chroma C = (max - min) / 255, saturation S = C / V and the
HSV hue H in degrees. A pixel with C < 0.12 is white when V >= 0.6 and has
no category otherwise (grey or dark). A pixel with C >= 0.12 and V < 0.2 is
dark and has no category. Every other pixel takes the category of its hue:

    red     [345, 15)     orange  [15, 45)     yellow  [45, 70)
    green   [70, 165)     blue    [165, 255)   purple  [255, 315)
    pink    [315, 345)

and a red pixel that is pale (S < 0.45 with V >= 0.7) is pink.

Region. The pixels of the original colour image that have a category other
than green: foliage, dark and grey backgrounds are left out (the datasets
carry no segmentation masks). When fewer than 1% of the pixels remain (a
green flower, a dark photograph), the region is the whole image. Callers may
pass their own masks. The region is found on the original and applied to
the colourised image; a sky or soil background of another colour stays in.

Dominant colour. The category that most pixels of the region take in the
colourised image, the pixels without a category forming a bin of their own:
when that bin is the largest (a flower left grey) there is no dominant
colour and the image counts as a miss. Ties go to the first of white, red,
orange, yellow, green, blue, purple, pink, then no colour.

Caption rule. The caption is lowercased and split into words at every
character other than a letter, so "yellow-orange" names yellow and orange
and "off-white" names white. Each word is looked up in the lexicon below
(a word ending in "s" is also looked up without it); other words, the
modifiers "light", "dark", "pale", "deep" and "bright" among them, are
ignored, so "light purple" names purple. Green counts only when the caption
names no other colour, because in these captions green nearly always
describes the leaves, stem or sepals. A caption matches when the dominant
colour is any of the colours it names; a caption of two colours ("red
petals with a yellow center") is therefore easier to match than one of one
colour, which the uniform guess rate (the mean of named colours / 8) shows.

    white   white, whitish, ivory; cream, creamy (also yellow)
    red     red, reddish, redish, crimson, scarlet, maroon, burgundy, ruby,
            vermilion, carmine
    orange  orange, orangish, orangey, orangy, tangerine, apricot, coral,
            rust, copper; peach, peachy (also pink)
    yellow  yellow, yellowish, yellowy, gold, golden, lemon, mustard
    green   green, greenish
    blue    blue, bluish, blueish, navy, azure, cobalt, cyan, turquoise,
            teal, aqua; indigo, periwinkle (also purple)
    purple  purple, purplish, violet, lavender, lilac, mauve, plum;
            magenta, fuchsia (also pink)
    pink    pink, pinkish, rosy

Excluded. A caption that names no colour of the lexicon is not scored
(counted as num_without_colour). Negation ("no red") and the part a colour
belongs to ("red stamen") are not parsed.

Image metrics. SSIM follows Wang et al. (2004): an 11 x 11 Gaussian window
of sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255, the window kept inside
the image ("valid"), computed per RGB channel and averaged over the
channels, as tf.image.ssim does. Colourfulness follows Hasler and Susstrunk
(2003) over the whole image: rg = R - G, yb = (R + G) / 2 - B,
M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2). The PSNR of
an image identical to its original is infinite; the mean PSNR caps each
image at 100 dB and counts the capped images (num_psnr_capped).
"""

import math
import re

import numpy as np

COLOR_CATEGORIES = (
    "white",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
)
# (category, first hue in degrees, hue where the next category starts); red
# wraps around 0 degrees.
HUE_TABLE = (
    ("red", 345.0, 15.0),
    ("orange", 15.0, 45.0),
    ("yellow", 45.0, 70.0),
    ("green", 70.0, 165.0),
    ("blue", 165.0, 255.0),
    ("purple", 255.0, 315.0),
    ("pink", 315.0, 345.0),
)
MIN_CHROMA = 0.12
MIN_VALUE = 0.2
MIN_WHITE_VALUE = 0.6
PALE_SATURATION = 0.45
PALE_VALUE = 0.7
MIN_REGION_FRACTION = 0.01
PSNR_CAP_DB = 100.0
DATA_RANGE = 255.0
SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

_WORDS = {
    ("white",): "white whitish ivory",
    ("white", "yellow"): "cream creamy",
    ("red",): (
        "red reddish redish crimson scarlet maroon burgundy ruby vermilion "
        "carmine"
    ),
    ("orange",): (
        "orange orangish orangey orangy tangerine apricot coral rust copper"
    ),
    ("orange", "pink"): "peach peachy",
    ("yellow",): "yellow yellowish yellowy gold golden lemon mustard",
    ("green",): "green greenish",
    ("blue",): "blue bluish blueish navy azure cobalt cyan turquoise teal aqua",
    ("blue", "purple"): "indigo periwinkle",
    ("purple",): "purple purplish violet lavender lilac mauve plum",
    ("purple", "pink"): "magenta fuchsia",
    ("pink",): "pink pinkish rosy",
}
# Word -> the colour categories it names.
LEXICON = {
    word: categories
    for categories, words in _WORDS.items()
    for word in words.split()
}
PROTOCOL = (__doc__ or "").partition("\n\n")[2].strip() + "\n"

_NO_CATEGORY = -1
_GREEN = COLOR_CATEGORIES.index("green")


def caption_colors(caption):
    """The colour categories `caption` names for the flower, in the order
    of their first mention (this project's caption rule: lexicon words,
    green only when no other colour is named).

    Args:
      caption: a str, or UTF-8 bytes as a tf.data pipeline yields them.

    Returns:
      A tuple of names from COLOR_CATEGORIES; empty when none is named.
    """
    if isinstance(caption, bytes):
        caption = caption.decode("utf-8")
    if not isinstance(caption, str):
        raise TypeError(
            f"caption must be a str or bytes; received {type(caption)}."
        )
    named = []
    for word in re.findall(r"[a-z]+", caption.lower()):
        categories = LEXICON.get(word)
        if categories is None and word.endswith("s"):
            categories = LEXICON.get(word[:-1])
        for category in categories or ():
            if category not in named:
                named.append(category)
    if len(named) > 1 and "green" in named:
        named.remove("green")
    return tuple(named)


def _as_rgb(image, name):
    """`image` as float64 (H, W, 3) on the 0..255 scale, validated."""
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or 0 in pixels.shape:
        raise ValueError(
            f"{name} must be an RGB array of shape (H, W, 3); received shape "
            f"{pixels.shape}."
        )
    if pixels.dtype == bool or not (
        np.issubdtype(pixels.dtype, np.integer)
        or np.issubdtype(pixels.dtype, np.floating)
    ):
        raise ValueError(
            f"{name} must hold integers or floats; received {pixels.dtype}."
        )
    pixels = pixels.astype(np.float64)
    low, high = pixels.min(), pixels.max()
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 255:
        raise ValueError(
            f"{name} must hold values in 0..255 (a float image in [0, 1] "
            f"must be multiplied by 255); received {low} .. {high}."
        )
    return pixels


def _as_mask(mask, shape, name="mask"):
    """`mask` as a bool (H, W) array; None selects every pixel."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(
            f"{name} must have the image's shape {tuple(shape)}; received "
            f"{mask.shape}."
        )
    return mask.astype(bool)


def _hue_degrees(pixels, maximum, delta):
    """HSV hue in [0, 360) degrees; 0 where the pixel is grey."""
    red, green, blue = np.moveaxis(pixels, -1, 0)
    safe = np.where(delta > 0, delta, 1.0)
    sector = np.where(
        maximum == red,
        np.mod((green - blue) / safe, 6.0),
        np.where(
            maximum == green,
            (blue - red) / safe + 2.0,
            (red - green) / safe + 4.0,
        ),
    )
    return np.where(delta > 0, sector * 60.0, 0.0)


def color_categories(rgb):
    """The colour category of every pixel: an int array (H, W) of indices
    into COLOR_CATEGORIES, -1 for grey and dark pixels (this project's hue
    table, HUE_TABLE, with its chroma and value rules).

    Args:
      rgb: (H, W, 3) uint8 or float on the 0..255 scale.
    """
    pixels = _as_rgb(rgb, "rgb")
    maximum = pixels.max(axis=-1)
    delta = maximum - pixels.min(axis=-1)
    value = maximum / 255.0
    chroma = delta / 255.0
    hue = _hue_degrees(pixels, maximum, delta)
    categories = np.full(value.shape, _NO_CATEGORY, dtype=np.int64)
    chromatic = (chroma >= MIN_CHROMA) & (value >= MIN_VALUE)
    for name, start, end in HUE_TABLE:
        if start < end:
            in_range = (hue >= start) & (hue < end)
        else:
            in_range = (hue >= start) | (hue < end)
        categories[chromatic & in_range] = COLOR_CATEGORIES.index(name)
    saturation = chroma / np.where(value > 0, value, 1.0)
    pale_red = (
        (categories == COLOR_CATEGORIES.index("red"))
        & (saturation < PALE_SATURATION)
        & (value >= PALE_VALUE)
    )
    categories[pale_red] = COLOR_CATEGORIES.index("pink")
    white = (chroma < MIN_CHROMA) & (value >= MIN_WHITE_VALUE)
    categories[white] = COLOR_CATEGORIES.index("white")
    return categories


def flower_region(rgb):
    """The pixels whose colour is judged, found on the ORIGINAL colour
    image: those with a category other than green (no foliage, no dark or
    grey background), or the whole image when fewer than
    MIN_REGION_FRACTION of the pixels remain (this project's protocol).

    Returns:
      A bool array (H, W).
    """
    categories = color_categories(rgb)
    region = (categories != _NO_CATEGORY) & (categories != _GREEN)
    if region.mean() < MIN_REGION_FRACTION:
        return np.ones_like(region)
    return region


def dominant_color(rgb, mask):
    """The colour category most pixels of the region take in `rgb`.

    Pixels without a category (grey, dark) form a bin of their own; when it
    is the largest, or the region is empty, there is no dominant colour.
    Ties go to the earlier category of COLOR_CATEGORIES.

    Args:
      rgb: the colourised image, (H, W, 3) uint8 or float on 0..255.
      mask: bool (H, W), usually `flower_region(original)`; None judges the
        whole image.

    Returns:
      A name from COLOR_CATEGORIES, or None.
    """
    categories = color_categories(rgb)
    selected = categories[_as_mask(mask, categories.shape)]
    # The last bin counts the pixels without a category.
    counts = np.bincount(
        np.where(selected == _NO_CATEGORY, len(COLOR_CATEGORIES), selected),
        minlength=len(COLOR_CATEGORIES) + 1,
    )
    if selected.size == 0 or counts[:-1].max() < counts[-1]:
        return None
    return COLOR_CATEGORIES[int(np.argmax(counts[:-1]))]


def hue_match(rgb, caption, mask):
    """Whether the dominant colour of the region of `rgb` is a colour that
    `caption` names; None when the caption names no colour (such a caption
    is left out of the match rate). See `dominant_color` for `mask`."""
    named = caption_colors(caption)
    if not named:
        return None
    return dominant_color(rgb, mask) in named


def match_rate(images, captions, masks):
    """The share of captioned images whose dominant colour the caption names.

    Args:
      images: colourised images, each (H, W, 3) on 0..255.
      captions: one caption per image.
      masks: one region per image (bool (H, W), or None for the whole
        image).

    Returns:
      {"match_rate": float, or None when no caption names a colour,
       "uniform_guess_rate": the match rate of a dominant colour drawn
         uniformly from the 8 categories (None likewise),
       "num_scored": int, "num_without_colour": int}.
    """
    _check_lengths(images=images, captions=captions, masks=masks)
    hits, guess_rates = [], []
    for image, caption, mask in zip(images, captions, masks, strict=True):
        matched = hue_match(image, caption, mask)
        if matched is None:
            continue
        hits.append(matched)
        guess_rates.append(len(caption_colors(caption)) / len(COLOR_CATEGORIES))
    return {
        "match_rate": float(np.mean(hits)) if hits else None,
        "uniform_guess_rate": float(np.mean(guess_rates)) if hits else None,
        "num_scored": len(hits),
        "num_without_colour": len(captions) - len(hits),
    }


def _check_lengths(**sequences):
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"expected one entry per image in each of {sorted(lengths)}; "
            f"received lengths {lengths}."
        )


def _check_same_shape(image, reference):
    if image.shape != reference.shape:
        raise ValueError(
            f"image and reference must have the same shape; received "
            f"{image.shape} and {reference.shape}."
        )


def psnr(image, reference):
    """Peak signal-to-noise ratio in dB, data range 255; inf when the two
    images are identical.

    Args:
      image, reference: (H, W, 3) uint8 or float on 0..255.
    """
    image = _as_rgb(image, "image")
    reference = _as_rgb(reference, "reference")
    _check_same_shape(image, reference)
    mean_squared_error = float(np.mean((image - reference) ** 2))
    if mean_squared_error == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mean_squared_error)


def _gaussian_window(size, sigma):
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    window = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return window / window.sum()


def _filter_valid(values, window):
    """Filters (H, W, C) with the separable 2-D window `outer(window,
    window)`, keeping only positions where it lies inside the image."""
    size = len(window)
    view = np.lib.stride_tricks.sliding_window_view
    rows = view(values, size, axis=0) @ window
    return view(rows, size, axis=1) @ window


def ssim(image, reference):
    """Structural similarity (Wang et al. 2004) per RGB channel, averaged
    over the channels: 11 x 11 Gaussian window of sigma 1.5, K1 0.01,
    K2 0.03, data range 255, valid window positions only (tf.image.ssim's
    definition). Both sides must be at least 11 pixels."""
    image = _as_rgb(image, "image")
    reference = _as_rgb(reference, "reference")
    _check_same_shape(image, reference)
    if min(image.shape[:2]) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW_SIZE} x "
            f"{SSIM_WINDOW_SIZE} pixels; received {image.shape[:2]}."
        )
    window = _gaussian_window(SSIM_WINDOW_SIZE, SSIM_SIGMA)
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    mu_x = _filter_valid(image, window)
    mu_y = _filter_valid(reference, window)
    sigma_xx = _filter_valid(image * image, window) - mu_x**2
    sigma_yy = _filter_valid(reference * reference, window) - mu_y**2
    sigma_xy = _filter_valid(image * reference, window) - mu_x * mu_y
    similarity = ((2.0 * mu_x * mu_y + c1) * (2.0 * sigma_xy + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (sigma_xx + sigma_yy + c2)
    )
    return float(similarity.mean())


def colorfulness(rgb):
    """Hasler and Susstrunk's (2003) colourfulness M of the whole image on
    the 0..255 scale: 0 for a grey image."""
    red, green, blue = np.moveaxis(_as_rgb(rgb, "rgb"), -1, 0)
    red_green = red - green
    yellow_blue = 0.5 * (red + green) - blue
    spread = math.hypot(float(red_green.std()), float(yellow_blue.std()))
    offset = math.hypot(float(red_green.mean()), float(yellow_blue.mean()))
    return spread + 0.3 * offset


def summary(colorized, originals, captions, masks=None):
    """Every number of this project's protocol over a set of images.

    Args:
      colorized: colourised images, each (H, W, 3) on 0..255.
      originals: the original colour images, one per colourised image.
      captions: the caption each image was colourised from.
      masks: one region per image (bool (H, W) or None for the whole
        image); None finds each region with `flower_region(original)`.

    Returns:
      A JSON-serialisable dict: "num_images", "mean_psnr_db" (each image
      capped at PSNR_CAP_DB), "num_psnr_capped", "mean_ssim",
      "mean_colorfulness", "mean_colorfulness_original" (Python floats;
      the counts Python ints) and the keys of `match_rate` (its rates None
      when no caption names a colour).
    """
    _check_lengths(colorized=colorized, originals=originals, captions=captions)
    if not colorized:
        raise ValueError("summary needs at least one image; received none.")
    if masks is None:
        masks = [flower_region(original) for original in originals]
    _check_lengths(colorized=colorized, masks=masks)
    psnrs, ssims, colored, original_colored = [], [], [], []
    for image, original in zip(colorized, originals, strict=True):
        psnrs.append(psnr(image, original))
        ssims.append(ssim(image, original))
        colored.append(colorfulness(image))
        original_colored.append(colorfulness(original))
    return {
        "num_images": len(colorized),
        "mean_psnr_db": float(np.mean(np.minimum(psnrs, PSNR_CAP_DB))),
        "num_psnr_capped": int(sum(value >= PSNR_CAP_DB for value in psnrs)),
        "mean_ssim": float(np.mean(ssims)),
        "mean_colorfulness": float(np.mean(colored)),
        "mean_colorfulness_original": float(np.mean(original_colored)),
        **match_rate(colorized, captions, masks),
    }
