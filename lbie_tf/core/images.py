"""Image files: atomic PNG writes, the pixel limit of an input image, the
conversion of any PNG or JPEG mode to 8-bit RGB, and enlargement."""

import os
import re
import warnings

import numpy as np
from PIL import Image

from lbie_tf.core import artifacts, errors

MAX_SCALE = 64
# The most pixels (width x height) an input image may have; larger ones are
# refused from their header, before any pixel is decoded (DEVIATIONS.md,
# "Edit CLI input"). A PNG is decoded as RGBA, 4 bytes a pixel, so an image
# at the limit takes 160 MB however well its data compresses, where a
# 40000 x 40000 PNG of one colour is a few hundred KB on disk and 6.4 GB
# decoded. 40 megapixels still admit an 8000 x 5000 photograph; Pillow's own
# limit (about 89 million pixels, an error above twice that) is higher, so
# this check always comes first.
MAX_IMAGE_PIXELS = 40_000_000
# Pillow modes read as 16-bit grey: PNG stores 16-bit grey as I;16 (older
# Pillow versions and TIFF as 32-bit I, with the same 0..65535 range).
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def write_png(path, pixels):
    """Writes `pixels` (uint8 H x W x 3, or H x W) as a PNG atomically: a
    temporary file beside `path` replaces it in one rename."""
    with artifacts.atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(
                file, format="PNG"
            )
    return path


def pixel_limit_message(pixels, width=None, height=None):
    """Why an image of `pixels` (`width` x `height`, where known) pixels is
    refused: the words of the in-graph check of `lbie_tf.core.serving`."""
    size = "" if width is None else f"{width}x{height} = "
    return (
        f"image is {size}{pixels} pixels, above the limit of "
        f"{MAX_IMAGE_PIXELS} pixels (MAX_IMAGE_PIXELS); it is refused before "
        "decoding"
    )


def composite_on_white(rgba):
    """Lays uint8 RGBA pixels over a white background: uint8 RGB.

    Rounded integer arithmetic, (c * a + 255 * (255 - a) + 127) // 255, the
    formula `lbie_tf.core.serving` applies in-graph, so that the edit CLI
    and an exported model see the same pixels. Transparent pixels become
    white whatever colour they store: a silhouette drawn on a transparent
    background keeps its white background (dropping the alpha would turn
    the (0, 0, 0, 0) pixels many editors write there black).
    """
    rgba = np.asarray(rgba, dtype=np.int32)
    colour, alpha = rgba[..., :3], rgba[..., 3:]
    mixed = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return mixed.astype(np.uint8)


def sixteen_to_eight_bits(values):
    """Reduces 16-bit samples to 8 bits by keeping the high byte, as
    tf.io.decode_png does (libpng's strip_16), so both paths agree; values
    outside 0..65535 are clipped first."""
    values = np.clip(np.asarray(values, dtype=np.int64), 0, 65535)
    return (values >> 8).astype(np.uint8)


def to_rgb(image):
    """Converts a loaded Pillow image of any mode to uint8 RGB (H, W, 3).

    Alpha (RGBA, LA, PA, a palette or grey with a transparent entry) is
    composited on white; 16-bit grey keeps its high byte (Pillow's own
    conversion would clip every value above 255 to white); everything else
    (grey, 1-bit, palette, CMYK, ...) goes through Pillow's RGB conversion.
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image)
        grey = np.repeat(sixteen_to_eight_bits(values)[..., None], 3, axis=-1)
        transparent = image.info.get("transparency")
        if not isinstance(transparent, int):
            return grey
        alpha = np.where(values == transparent, 0, 255)[..., None]
        return composite_on_white(np.concatenate([grey, alpha], axis=-1))
    if image.has_transparency_data:
        return composite_on_white(np.asarray(image.convert("RGBA")))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_image_file(path, accepted, size=None):
    """Reads a PNG or JPEG file of any mode as uint8 RGB [H, W, 3]
    (`to_rgb`), its size checked from the header before any pixel is
    decoded: above MAX_IMAGE_PIXELS (a decompression bomb), or other than
    `size` ((width, height), when given), it is refused.

    Args:
      accepted: what the caller accepts, ending every error message.

    Raises:
      ImageError: missing, not an image, damaged, too large or of the
        wrong size, in one line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise errors.ImageError(
            f"image not found: {path!r} is not a file; {accepted}."
        )
    try:
        # Image.open reads only the header. Pillow warns, or raises, about
        # decompression bombs there; its limits are above ours, so its
        # warning is silenced and its error reported with our limit.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                limit = pixel_limit_message(width * height, width, height)
                raise errors.ImageError(f"{path!r}: {limit}; {accepted}.")
            if size is not None and (width, height) != tuple(size):
                raise errors.ImageError(
                    f"{path!r} is {width}x{height} pixels; {accepted}."
                )
            return to_rgb(image)
    except errors.UserError:
        raise
    except Image.DecompressionBombError as error:
        # Pillow's message is the only place its header count survives.
        count = re.search(r"\((\d+) pixels\)", str(error))
        pixels = count.group(1) if count else f"over {MAX_IMAGE_PIXELS}"
        limit = pixel_limit_message(pixels)
        raise errors.ImageError(f"{path!r}: {limit}; {accepted}.") from None
    except Image.UnidentifiedImageError:
        raise errors.ImageError(
            f"{path!r} is not an image file; {accepted}."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise errors.ImageError(
            f"{path!r} is a damaged image ({errors.one_line(error)}); "
            f"{accepted}."
        ) from None


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
