"""An independent NumPy reference of Hu et al.'s resizing with the skimage
of 2016: resize(order=1, mode='constant', cval=0), resize_and_pad and
resize_and_crop, written from their definitions."""

from fractions import Fraction

import numpy as np

SIDE = 512


def _coordinates(in_size, out_size):
    """Input coordinate (i + 0.5) * in / out - 0.5 of each output pixel i,
    as exact fractions: (floor, fractional part as a float)."""
    floors, fractions = [], []
    for i in range(out_size):
        coordinate = (Fraction(2 * i + 1, 2 * out_size) * in_size) - Fraction(
            1, 2
        )
        floor = coordinate.numerator // coordinate.denominator
        floors.append(floor)
        fractions.append(float(coordinate - floor))
    return np.array(floors), np.array(fractions)


def resize(image, out_height, out_width):
    """skimage 0.12's bilinear warp, pixel by pixel: the 4 neighbours of each
    sample point, a neighbour outside the image reading cval = 0."""
    image = np.asarray(image, dtype=np.float64)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[:, :, None]
    in_height, in_width = image.shape[:2]
    row_floor, row_fraction = _coordinates(in_height, out_height)
    col_floor, col_fraction = _coordinates(in_width, out_width)
    rows = row_floor[:, None] * np.ones((1, out_width), dtype=np.int64)
    cols = col_floor[None, :] * np.ones((out_height, 1), dtype=np.int64)
    dr = (row_fraction[:, None] * np.ones((1, out_width)))[..., None]
    dc = (col_fraction[None, :] * np.ones((out_height, 1)))[..., None]

    def pixel(r, c):
        inside = (r >= 0) & (r < in_height) & (c >= 0) & (c < in_width)
        values = image[
            np.clip(r, 0, in_height - 1), np.clip(c, 0, in_width - 1)
        ]
        return np.where(inside[..., None], values, 0.0)

    top = (1 - dc) * pixel(rows, cols) + dc * pixel(rows, cols + 1)
    bottom = (1 - dc) * pixel(rows + 1, cols) + dc * pixel(rows + 1, cols + 1)
    out = (1 - dr) * top + dr * bottom
    return out[:, :, 0] if squeeze else out


def letterbox_size(height, width):
    scale = min(SIDE / height, SIDE / width)
    return (
        max(int(np.round(height * scale)), 1),
        max(int(np.round(width * scale)), 1),
    )


def resize_and_pad(image):
    """Hu et al.'s resize_and_pad to 512 x 512 (float values, zero canvas)."""
    image = np.asarray(image, dtype=np.float64)
    height, width = letterbox_size(*image.shape[:2])
    top, left = (SIDE - height) // 2, (SIDE - width) // 2
    canvas = np.zeros((SIDE, SIDE) + image.shape[2:])
    canvas[top : top + height, left : left + width] = resize(
        image, height, width
    )
    return canvas


def resize_and_crop(prediction, height, width):
    """Hu et al.'s resize_and_crop of a 512 x 512 map to height x width."""
    scale = max(height / SIDE, width / SIDE)
    size = int(np.round(SIDE * scale))
    top, left = (size - height) // 2, (size - width) // 2
    resized = resize(np.asarray(prediction, dtype=np.float64), size, size)
    return resized[top : top + height, left : left + width]
