"""Draws a grid of CoSaL examples (silhouette, target, 9 sentences) as a PNG.

Usage:
  python -m data_builders.cosal.preview --config=direct_6 \
      --out=results/cosal_samples.png
"""

import argparse
import io
import posixpath
import sys

import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from data_builders.cosal import generator
from data_builders.cosal.cosal_dataset_builder import (
    REGISTERED_CONFIGS,
    make_config,
)

_MARGIN = 10
_LINE_HEIGHT = 16
_TEXT_COLOR = (0, 0, 0)
_RELATIONAL_COLOR = (90, 90, 200)


def make_preview(config, num_examples=6, split="test", scale=3, columns=3):
    """Returns a PIL image: num_examples of `split`, as the builder stores them.

    Each panel shows the silhouette (the model's input), the target, and the
    nine sentences under them; relational sentences are drawn in blue.
    """
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}.")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}.")
    font = ImageFont.load_default(size=13)
    size = config.image_size * scale
    text_width = max(
        int(font.getlength("half thin ellipse is light green")),
        2 * size + _MARGIN,
    )
    panel_width = text_width + 2 * _MARGIN
    panel_height = size + 10 * _LINE_HEIGHT + 2 * _MARGIN
    rows = -(-num_examples // columns)
    header = 2 * _LINE_HEIGHT
    sheet = Image.new(
        "RGB",
        (columns * panel_width, header + rows * panel_height),
        (235, 235, 235),
    )
    draw = ImageDraw.Draw(sheet)
    draw.text(
        (_MARGIN, _MARGIN // 2),
        f"CoSaL {config.name} ({split}): {config.num_direct} direct "
        f"sentences, {config.num_colors} colours, seed {config.seed}; "
        "relational sentences in blue",
        fill=_TEXT_COLOR,
        font=font,
    )
    examples = generator.generate_split(
        split,
        num_examples,
        seed=config.seed,
        num_direct=config.num_direct,
        num_colors=config.num_colors,
        image_size=config.image_size,
        reproduce_coverage_bug=bool(config.reproduce_coverage_bug),
    )
    for index, example in examples:
        row, col = divmod(index, columns)
        x0 = col * panel_width + _MARGIN
        y0 = header + row * panel_height + _MARGIN
        for offset, key in ((0, "image"), (size + _MARGIN, "target")):
            picture = Image.fromarray(example[key]).resize(
                (size, size), Image.NEAREST
            )
            sheet.paste(picture, (x0 + offset, y0))
        for line, (text, direct) in enumerate(
            zip(example["sentence_text"], example["is_direct"], strict=True)
        ):
            draw.text(
                (x0, y0 + size + _MARGIN // 2 + line * _LINE_HEIGHT),
                f"{line + 1}. {text}",
                fill=_TEXT_COLOR if direct else _RELATIONAL_COLOR,
                font=font,
            )
    return sheet


def write_png(picture, path):
    """Writes a PIL image as PNG through tf.io.gfile."""
    directory = posixpath.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default="direct_6", choices=sorted(REGISTERED_CONFIGS)
    )
    parser.add_argument("--out", default="results/cosal_samples.png")
    parser.add_argument("--num_examples", type=int, default=6)
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument(
        "--reproduce_coverage_bug", action="store_true", default=False
    )
    args = parser.parse_args(argv)
    config = make_config(
        args.config, reproduce_coverage_bug=args.reproduce_coverage_bug
    )
    try:
        picture = make_preview(
            config, args.num_examples, args.split, args.scale
        )
    except ValueError as error:
        parser.error(str(error))
    write_png(picture, args.out)
    print(f"Wrote {args.out} ({picture.width} x {picture.height}).")


if __name__ == "__main__":
    sys.exit(main())
