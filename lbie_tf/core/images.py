"""Image files: atomic PNG writes and nearest-neighbour enlargement."""

import numpy as np
from PIL import Image

from lbie_tf.core import artifacts

MAX_SCALE = 64


def write_png(path, pixels):
    """Writes `pixels` (uint8 H x W x 3, or H x W) as a PNG atomically: a
    temporary file beside `path` replaces it in one rename."""
    with artifacts.atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(
                file, format="PNG"
            )
    return path


def is_scale(value):
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and 1 <= value <= MAX_SCALE
    )


def upscale(pixels, scale):
    """Enlarges an image `scale` times with nearest-neighbour sampling, so
    small images stay crisp for viewing."""
    if not is_scale(scale):
        raise ValueError(
            f"scale must be an integer in 1..{MAX_SCALE}; received {scale!r}."
        )
    pixels = np.asarray(pixels)
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
