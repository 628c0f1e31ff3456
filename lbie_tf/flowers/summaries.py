"""The flowers task's TensorBoard panels: for test images, a row of grey
input | ours | no-text baseline (when one is given) | original with the
caption under it, and the scores as text."""

import json
import textwrap

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from lbie_tf.flowers import input_pipeline

_CAPTION_LINES = 2
_LINE_HEIGHT = 12
_GAP = 4


def _uint8(rgb):
    return np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)


def grid_rows(
    inputs,
    targets,
    colorized,
    baseline=None,
    scale=1,
    caption_lines=_CAPTION_LINES,
):
    """uint8 [N, H', W', 3]: per image the panels in a row with its caption
    written under them (Pillow's default font, at most `caption_lines`
    lines), each panel enlarged `scale` times (nearest neighbour)."""
    lightness = np.asarray(inputs["lightness"])
    grey = _uint8(np.repeat((lightness + 1.0) / 2.0, 3, axis=-1))
    original = _uint8(input_pipeline.to_rgb(lightness, targets["ab"]))
    columns = [grey, colorized] + ([baseline] if baseline is not None else [])
    columns.append(original)
    columns = [
        np.repeat(np.repeat(column, scale, axis=1), scale, axis=2)
        for column in columns
    ]
    rows = []
    for index, caption in enumerate(np.asarray(targets["caption"])):
        height, width = columns[0].shape[1:3]
        total = len(columns) * (width + _GAP) - _GAP
        canvas = Image.new(
            "RGB", (total, height + caption_lines * _LINE_HEIGHT), "white"
        )
        for position, column in enumerate(columns):
            canvas.paste(
                Image.fromarray(column[index]), (position * (width + _GAP), 0)
            )
        lines = textwrap.wrap(
            caption.decode("utf-8", "replace"), width=max(total // 6, 10)
        )[:caption_lines]
        draw = ImageDraw.Draw(canvas)
        for line_index, line in enumerate(lines):
            draw.text(
                (0, height + line_index * _LINE_HEIGHT), line, fill="black"
            )
        rows.append(np.asarray(canvas))
    return np.stack(rows)


def colorize(model, inputs):
    """uint8 [B, H, W, 3]: the model's colours on the input's L."""
    ab = np.asarray(model(inputs, training=False)["ab"], np.float32)
    return _uint8(input_pipeline.to_rgb(inputs["lightness"], ab))


def write_summaries(
    writer, model, batch, results, step, num_images, baseline=None
):
    """Writes, at `step`, "test/colorizations" (the first `num_images` test
    images: grey input | ours | `baseline`'s, when a no-text model is given
    | original, caption under them) and "test/scores" (`results`)."""
    inputs, targets = batch
    inputs = {key: value[:num_images] for key, value in inputs.items()}
    targets = {key: value[:num_images] for key, value in targets.items()}
    ours = colorize(model, inputs)
    theirs = None if baseline is None else colorize(baseline, inputs)
    with writer.as_default():
        tf.summary.image(
            "test/colorizations",
            grid_rows(inputs, targets, ours, theirs),
            step=step,
            max_outputs=num_images,
        )
        scores = {
            key: value
            for key, value in results.items()
            if isinstance(value, int | float)
        }
        tf.summary.text(
            "test/scores",
            "```\n" + json.dumps(scores, indent=1, sort_keys=True) + "\n```",
            step=step,
        )
    writer.flush()
