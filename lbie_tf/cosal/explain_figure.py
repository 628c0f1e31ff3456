"""Draws which sentence each fusion step attended to, per cell (Figure 5)."""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Figure 5 of the paper colours steps 1..3 red, yellow and green; blue and
# then further distinct colours continue the sequence for longer models.
STEP_COLORS = (
    (230, 30, 30),
    (240, 190, 0),
    (40, 170, 40),
    (40, 90, 255),
    (200, 40, 200),
    (0, 180, 190),
    (255, 130, 0),
    (130, 80, 40),
)
STEP_COLOR_NAMES = (
    "red",
    "yellow",
    "green",
    "blue",
    "magenta",
    "cyan",
    "orange",
    "brown",
)
_TEXT_RGB = (20, 20, 20)
_GRID_RGB = (120, 120, 120)
_PANEL_RGB = (255, 255, 255)
# Steps after a cell's stop step: computed, but their output is not used.
_UNUSED_RGB = (175, 175, 175)
# How much of the edited image shows through under the per-cell labels: the
# colours stay recognisable while the labels keep full contrast.
_IMAGE_OPACITY = 0.45


def _map_shape(num_regions, map_shape):
    if map_shape is not None:
        rows, cols = (int(v) for v in map_shape)
        if rows * cols != num_regions:
            raise ValueError(
                f"map_shape {tuple(map_shape)} has {rows * cols} regions but "
                f"attention_weights has {num_regions}."
            )
        return rows, cols
    side = math.isqrt(num_regions)
    if side * side != num_regions:
        raise ValueError(
            f"attention_weights has {num_regions} regions, not a square "
            "number; pass map_shape=(rows, cols) for the fused map."
        )
    return side, side


def _cell_members(rows, cols, grid_size):
    """Lists, per cell (row-major), the flat indices of the fused-map regions
    whose centre lies in the cell; a cell that holds no region centre (a map
    coarser than the grid) takes the region that covers the cell's centre."""
    members = []
    for cell_row in range(grid_size):
        for cell_col in range(grid_size):
            inside = [
                r * cols + c
                for r in range(rows)
                for c in range(cols)
                if int((r + 0.5) * grid_size / rows) == cell_row
                and int((c + 0.5) * grid_size / cols) == cell_col
            ]
            if not inside:
                r = int((cell_row + 0.5) * rows / grid_size)
                c = int((cell_col + 0.5) * cols / grid_size)
                inside = [r * cols + c]
            members.append(inside)
    return members


def cell_attention(attention_weights, grid_size=3, map_shape=None):
    """Averages attention weights over the fused-map regions of each cell.

    Args:
      attention_weights: array (regions, sentences, T); regions index the
        fused M x N map row-major (3 x 3 or 6 x 6 for CoSaL).
      grid_size: cells per image side (3 for CoSaL).
      map_shape: (M, N) of the fused map; None means square.

    Returns:
      float array (grid_size, grid_size, sentences, T).
    """
    weights = np.asarray(attention_weights, dtype=np.float64)
    if weights.ndim != 3:
        raise ValueError(
            "attention_weights must have shape (regions, sentences, steps); "
            f"received shape {weights.shape}."
        )
    if isinstance(grid_size, bool) or int(grid_size) != grid_size:
        raise ValueError(
            f"grid_size must be a positive integer; received {grid_size!r}."
        )
    if grid_size < 1:
        raise ValueError(
            f"grid_size must be a positive integer; received {grid_size!r}."
        )
    rows, cols = _map_shape(weights.shape[0], map_shape)
    members = _cell_members(rows, cols, int(grid_size))
    per_cell = np.stack([weights[m].mean(axis=0) for m in members])
    return per_cell.reshape(grid_size, grid_size, *weights.shape[1:])


def attended_sentences(attention_weights, grid_size=3, map_shape=None):
    """Returns, per step and cell, the sentence with the largest attention
    weight (paper, section 4.1, Figure 5): int array (T, grid, grid)."""
    per_cell = cell_attention(attention_weights, grid_size, map_shape)
    return np.moveaxis(per_cell.argmax(axis=2), -1, 0)


def cell_stop_steps(stop_steps, grid_size=3):
    """The most common stop step (0-based) over the regions (or pixels) of
    each cell: int array (grid_size, grid_size). `stop_steps` is an int map
    (M, N) at any resolution, row-major over the image; ties go to the
    earlier step."""
    steps = np.asarray(stop_steps)
    if steps.ndim != 2 or not np.issubdtype(steps.dtype, np.integer):
        raise ValueError(
            "stop_steps must be an integer map (rows, cols); received "
            f"{steps.dtype} shape {steps.shape}."
        )
    rows, cols = steps.shape
    flat = steps.reshape(-1)
    members = _cell_members(rows, cols, int(grid_size))
    per_cell = [np.bincount(flat[m]).argmax() for m in members]
    return np.asarray(per_cell, dtype=np.int64).reshape(grid_size, grid_size)


def _font(size):
    return ImageFont.load_default(size=size)


def _swatch(draw, x, y, size, step, font, color=None):
    """Draws the colour box of `step` (0-based) with its number inside."""
    color = color or STEP_COLORS[step % len(STEP_COLORS)]
    draw.rectangle((x, y, x + size - 1, y + size - 1), fill=color)
    label = str(step + 1)
    width = draw.textlength(label, font=font)
    draw.text(
        (x + (size - width) / 2, y + 1),
        label,
        fill=(255, 255, 255),
        font=font,
        stroke_width=1,
        stroke_fill=(0, 0, 0),
    )


def render_explanation(
    image,
    attention_weights,
    sentences,
    scale=8,
    grid_size=3,
    map_shape=None,
    stop_steps=None,
):
    """Draws a Figure 5 style picture of what each step attended to.

    Left: the (edited) image, enlarged, with a 3 x 3 grid; each cell lists, for
    every step in that step's colour (red, yellow, green, blue, ...), the
    index of the sentence with the largest attention weight there. With
    `stop_steps`, the step whose output the cell keeps is marked "*" and the
    steps after it (computed, but not used there) are greyed. Right: the
    numbered sentences, each followed by the steps that chose it (and in how
    many cells).

    Args:
      image: uint8 array (H, W, 3), typically the model's coloured output.
      attention_weights: array (regions, len(sentences), T).
      sentences: the sentence texts, in model order.
      scale: how many times the image is enlarged (nearest neighbour).
      grid_size: cells per image side.
      map_shape: (M, N) of the fused map; None means square.
      stop_steps: optional int array (grid_size, grid_size): per cell, the
        0-based step whose output is kept (`cell_stop_steps`).

    Returns:
      uint8 array (height, width, 3).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"image must have shape (H, W, 3); received shape {image.shape}."
        )
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)):
        raise ValueError(
            f"scale must be a positive integer; received {scale!r}."
        )
    if scale < 1:
        raise ValueError(
            f"scale must be a positive integer; received {scale!r}."
        )
    weights = np.asarray(attention_weights)
    if weights.ndim != 3 or weights.shape[1] != len(sentences):
        raise ValueError(
            "attention_weights must have shape (regions, len(sentences), "
            f"steps) = (regions, {len(sentences)}, steps); received shape "
            f"{weights.shape}."
        )
    choices = attended_sentences(weights, grid_size, map_shape)
    num_steps = choices.shape[0]
    if stop_steps is not None:
        stop_steps = np.asarray(stop_steps)
        if stop_steps.shape != (grid_size, grid_size) or not (
            np.issubdtype(stop_steps.dtype, np.integer)
            and 0 <= stop_steps.min()
            and stop_steps.max() < num_steps
        ):
            raise ValueError(
                f"stop_steps must be integers in [0, {num_steps}) of shape "
                f"({grid_size}, {grid_size}); received {stop_steps.dtype} "
                f"shape {stop_steps.shape}."
            )

    height, width = image.shape[0] * scale, image.shape[1] * scale
    cell_height, cell_width = height / grid_size, width / grid_size
    line = int(max(9, min(18, cell_height // (num_steps + 1))))
    cell_font, text_font = _font(line - 3), _font(14)
    margin, title_height = 12, 28

    faded = 255 - (255 - image.astype(np.float64)) * _IMAGE_OPACITY
    faded = np.repeat(np.repeat(faded, scale, axis=0), scale, axis=1)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    listing = [f"s{k + 1}. {s}" for k, s in enumerate(sentences)]
    list_width = max(measure.textlength(t, font=text_font) for t in listing)
    swatch_width = 48 * max(1, num_steps)
    legend_labels = [
        f"step {step + 1} ({STEP_COLOR_NAMES[step % len(STEP_COLOR_NAMES)]})"
        for step in range(min(num_steps, 4))
    ]
    legend_width = sum(
        20 + measure.textlength(label, font=_font(12)) + margin
        for label in legend_labels
    )
    panel_width = int(
        max(list_width + swatch_width + 3 * margin, legend_width + margin)
    )
    list_height = 22 * (len(sentences) + 2) + 22 * math.ceil(num_steps / 4)
    if stop_steps is not None:
        list_height += 22
    canvas = Image.new(
        "RGB",
        (
            width + panel_width + 2 * margin,
            max(height, list_height) + title_height + 2 * margin,
        ),
        _PANEL_RGB,
    )
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (margin, margin),
        "Sentence with the largest attention weight, per step and cell",
        fill=_TEXT_RGB,
        font=text_font,
    )
    top = margin + title_height
    canvas.paste(Image.fromarray(faded.astype(np.uint8)), (margin, top))
    for i in range(grid_size + 1):
        x = margin + round(i * cell_width)
        y = top + round(i * cell_height)
        draw.line((x, top, x, top + height), fill=_GRID_RGB, width=1)
        draw.line((margin, y, margin + width, y), fill=_GRID_RGB, width=1)
    for row in range(grid_size):
        for col in range(grid_size):
            x0 = margin + col * cell_width + 3
            y0 = top + row * cell_height + 3
            for step in range(num_steps):
                y = y0 + step * line
                if y + line > top + (row + 1) * cell_height:
                    break
                label, color, text_rgb = (
                    f"s{choices[step, row, col] + 1}",
                    None,
                    _TEXT_RGB,
                )
                if stop_steps is not None:
                    if step == stop_steps[row, col]:
                        label += " *"
                    elif step > stop_steps[row, col]:
                        color, text_rgb = _UNUSED_RGB, _UNUSED_RGB
                _swatch(draw, x0, y, line - 1, step, cell_font, color)
                draw.text(
                    (x0 + line + 2, y),
                    label,
                    fill=text_rgb,
                    font=cell_font,
                    stroke_width=1,
                    stroke_fill=(255, 255, 255),
                )

    left = margin * 2 + width
    draw.text((left, top), "Sentences", fill=_TEXT_RGB, font=text_font)
    for k, text in enumerate(listing):
        y = top + 22 * (k + 1)
        draw.text((left, y), text, fill=_TEXT_RGB, font=text_font)
        for step in range(num_steps):
            # One column per step, so a step's choices line up vertically.
            x = left + list_width + margin + 48 * step
            count = int((choices[step] == k).sum())
            if count:
                _swatch(draw, x, y, 17, step, _font(12))
                draw.text(
                    (x + 19, y + 1), f"x{count}", fill=_TEXT_RGB, font=_font(12)
                )
    legend_top = top + 22 * (len(sentences) + 1) + 8
    for step in range(num_steps):
        # Four legend entries per line keep the legend inside the panel.
        if step % 4 == 0:
            x = left
        legend_y = legend_top + 22 * (step // 4)
        _swatch(draw, x, legend_y, 17, step, _font(12))
        name = STEP_COLOR_NAMES[step % len(STEP_COLOR_NAMES)]
        label = f"step {step + 1} ({name})"
        draw.text((x + 20, legend_y + 1), label, fill=_TEXT_RGB, font=_font(12))
        x += 20 + int(draw.textlength(label, font=_font(12))) + margin
    if stop_steps is not None:
        draw.text(
            (left, legend_top + 22 * math.ceil(num_steps / 4)),
            "* output kept (termination gate); grey: steps after it",
            fill=_TEXT_RGB,
            font=_font(12),
        )
    return np.asarray(canvas, dtype=np.uint8)
