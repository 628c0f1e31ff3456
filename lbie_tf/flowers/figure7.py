"""The paper's Figure 7 protocol: one flower recoloured from "the flower is
<colour> in color" for six colours, each scored by its dominant colour."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lbie_tf.core import images
from lbie_tf.flowers import consistency

FIGURE7_COLORS = ("white", "red", "orange", "yellow", "blue", "purple")
# The strip under each panel: up to three lines of caption and one of the
# hit or miss mark.
LABEL_HEIGHT = 60
_LINE_HEIGHT = 13
_FONT_SIZE = 11
_PADDING = 4
_CAPTION_LINES = (LABEL_HEIGHT - 2 * _PADDING) // _LINE_HEIGHT - 1
_BACKGROUND_RGB = (255, 255, 255)
_TEXT_RGB = (20, 20, 20)
_HIT_RGB = (20, 140, 40)
_MISS_RGB = (200, 30, 30)
# sRGB's relative luminance weights, the Y row of the RGB -> XYZ matrix
# that the flowers task's Lab conversion uses.
_LUMINANCE_WEIGHTS = np.array([0.212671, 0.715160, 0.072169])


def figure7_captions():
    """The captions of Figure 7 (section 4.3), lowercase, one per colour of
    FIGURE7_COLORS."""
    return [f"the flower is {color} in color" for color in FIGURE7_COLORS]


def _as_uint8_rgb(image, name):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"{name} must be a uint8 RGB array (H, W, 3); received "
            f"{image.dtype} of shape {image.shape}."
        )
    return image


def luminance_grey(rgb):
    """The grey image of the same relative luminance as `rgb` (uint8
    (H, W, 3)): what the colouriser sees, since CIE L* depends on the
    luminance Y alone."""
    values = _as_uint8_rgb(rgb, "rgb") / 255.0
    linear = np.where(
        values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4
    )
    luminance = linear @ _LUMINANCE_WEIGHTS
    encoded = np.where(
        luminance <= 0.0031308,
        12.92 * luminance,
        1.055 * np.power(luminance, 1.0 / 2.4) - 0.055,
    )
    grey = np.clip(np.round(encoded * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def run_figure7(colorize, rgb, mask=None):
    """Recolours `rgb` with each caption of Figure 7 and scores each result.

    Args:
      colorize: `colorize(rgb_uint8, caption) -> rgb_uint8` of the same
        shape, the trained model's editing path; it is given the original
        colour image and must use only its lightness, as the model does.
      rgb: the original colour image, uint8 (H, W, 3).
      mask: the region whose colour is judged, bool (H, W); None finds it
        with `consistency.flower_region(rgb)`.

    Returns:
      {"per_color": one dict per colour of FIGURE7_COLORS, with "color",
         "caption", "image" (uint8 (H, W, 3)), "dominant_color" (a name of
         consistency.COLOR_CATEGORIES, or None) and "hit" (bool: the
         dominant colour is the asked one),
       "hit_rate": float, the share of hits,
       "mask": the bool (H, W) region that was judged}.
    """
    rgb = _as_uint8_rgb(rgb, "rgb")
    if mask is None:
        mask = consistency.flower_region(rgb)
    mask = np.asarray(mask, dtype=bool)
    per_color = []
    for color, caption in zip(FIGURE7_COLORS, figure7_captions(), strict=True):
        colorized = _as_uint8_rgb(
            colorize(rgb.copy(), caption), f"colorize's result for {caption!r}"
        )
        if colorized.shape != rgb.shape:
            raise ValueError(
                f"colorize's result for {caption!r} has shape "
                f"{colorized.shape}; expected the input's {rgb.shape}."
            )
        dominant = consistency.dominant_color(colorized, mask)
        per_color.append(
            {
                "color": color,
                "caption": caption,
                "image": colorized,
                "dominant_color": dominant,
                "hit": dominant == color,
            }
        )
    hits = [entry["hit"] for entry in per_color]
    return {
        "per_color": per_color,
        "hit_rate": float(np.mean(hits)),
        "mask": mask,
    }


def _wrap(text, width, draw, font):
    """Greedy word wrap of `text` into lines at most `width` pixels wide
    (a single word wider than that keeps a line of its own)."""
    lines = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def _panel(image, caption, mark, mark_rgb, font):
    """One image with its label strip underneath."""
    height, width = image.shape[:2]
    panel = Image.new("RGB", (width, height + LABEL_HEIGHT), _BACKGROUND_RGB)
    panel.paste(Image.fromarray(image), (0, 0))
    draw = ImageDraw.Draw(panel)
    lines = _wrap(caption, width - 2 * _PADDING, draw, font)
    y = height + _PADDING
    for line in lines[:_CAPTION_LINES]:
        draw.text((_PADDING, y), line, fill=_TEXT_RGB, font=font)
        y += _LINE_HEIGHT
    if mark:
        mark_y = height + LABEL_HEIGHT - _PADDING - _LINE_HEIGHT
        draw.text((_PADDING, mark_y), mark, fill=mark_rgb, font=font)
    return panel


def figure7_panel(rgb, results, path):
    """Writes Figure 7 for one image as a PNG, atomically: the grey input
    the model sees, then one panel per colour, each labelled with its
    caption and a hit or miss mark (the dominant colour found on a miss).

    The PNG is (number of colours + 1) x W pixels wide and H + LABEL_HEIGHT
    high, for an (H, W) image.

    Args:
      rgb: the original colour image, uint8 (H, W, 3).
      results: what `run_figure7` returned for it.
      path: the PNG to write.

    Returns:
      `path`.
    """
    rgb = _as_uint8_rgb(rgb, "rgb")
    font = ImageFont.load_default(size=_FONT_SIZE)
    panels = [_panel(luminance_grey(rgb), "grey input", "", None, font)]
    for entry in results["per_color"]:
        image = _as_uint8_rgb(entry["image"], f"image of {entry['color']!r}")
        if image.shape != rgb.shape:
            raise ValueError(
                f"the image of {entry['color']!r} has shape {image.shape}; "
                f"expected the input's {rgb.shape}."
            )
        if entry["hit"]:
            mark, mark_rgb = "hit", _HIT_RGB
        else:
            found = entry["dominant_color"] or "no colour"
            mark, mark_rgb = f"miss: {found}", _MISS_RGB
        panels.append(_panel(image, entry["caption"], mark, mark_rgb, font))
    height, width = rgb.shape[:2]
    canvas = Image.new(
        "RGB", (width * len(panels), height + LABEL_HEIGHT), _BACKGROUND_RGB
    )
    for index, panel in enumerate(panels):
        canvas.paste(panel, (index * width, 0))
    return images.write_png(path, np.asarray(canvas))
