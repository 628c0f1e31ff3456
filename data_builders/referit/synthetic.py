"""Writes a synthetic referring-expression dataset in ReferIt's file layout.

Each image holds 2-4 coloured shapes; each region's expressions name its
colour, shape and/or position so that exactly one object of the image fits.
The files follow Hu et al.'s text_objseg layout exactly (layout.py), so
the `referit` builder, the verify command and the models run on them
offline.

Usage:
  python -m data_builders.referit.synthetic --out=DIR --train_images=N \
      --test_images=M [--val_images=K] [--seed=S]
"""

import argparse
import dataclasses
import io
import json
import pathlib
import sys

import numpy as np
import scipy.io
from PIL import Image, ImageDraw

from data_builders.referit import layout

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 165, 70),
    "blue": (45, 80, 220),
    "yellow": (235, 205, 40),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("left", "right", "top", "bottom")
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 60, 100
MIN_OBJECTS, MAX_OBJECTS = 2, 4
MIN_OBJECT_SIDE, MAX_OBJECT_SIDE = 14, 24
# An object named by its position ("the circle on the left") must be the
# extreme one among those its other words allow by at least this many
# pixels (bounding-box centres), and lie in that half of the image.
POSITION_MARGIN = 4
GREY_FRACTION = 0.2

_POSITION_PHRASES = {
    "left": ("on the left", "left", "at the left"),
    "right": ("on the right", "right"),
    "top": ("at the top", "on top", "top"),
    "bottom": ("at the bottom", "bottom"),
}
_NOUNS = ("shape", "object")
_COLOR_NOUNS = ("one", "shape", "object")
_BACKGROUNDS = (
    (255, 255, 255),
    (236, 236, 232),
    (210, 210, 210),
    (244, 238, 222),
    (190, 195, 200),
)
_GAP = 3
_UNDESCRIBED_FRACTION = 0.1
_JPEG_QUALITY = 90
_SPLIT_ORDER_STREAM = 1_000_003
# scipy writes the creation time into the 116-byte descriptive text that
# opens a MATLAB 5 file; a fixed text keeps the output byte-identical for a
# seed (MATLAB and scipy only need the "MATLAB 5.0 MAT-file" prefix).
_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by data_builders.referit.synthetic"
_MAT_HEADER_SIZE = 116

WORDS = sorted(
    {"the", "on", "at", *_NOUNS, *_COLOR_NOUNS, *COLORS, *SHAPES}
    | {
        word
        for phrases in _POSITION_PHRASES.values()
        for p in phrases
        for word in p.split()
    }
)
VOCABULARY = (*layout.SPECIAL_TOKENS, *WORDS)


@dataclasses.dataclass(frozen=True)
class SyntheticObject:
    """One shape: its name, colour name and square box (x0, y0, side)."""

    shape: str
    color: str
    x0: int
    y0: int
    side: int

    @property
    def center(self):
        """The box centre (x, y); shapes touch all four sides of the box."""
        half = (self.side - 1) / 2
        return self.x0 + half, self.y0 + half


def referents(objects, color, shape, position, width, height):
    """Indices of the objects an expression's words pick out.

    Args:
      objects: the image's SyntheticObjects.
      color, shape: a colour / shape name, or None for any.
      position: one of POSITIONS or None. With a position, the expression
        names the extreme candidate in that direction, if it beats every
        other candidate by POSITION_MARGIN pixels and lies in that half of
        the image; otherwise nothing.
      width, height: the image size.
    """
    candidates = [
        i
        for i, o in enumerate(objects)
        if (color is None or o.color == color)
        and (shape is None or o.shape == shape)
    ]
    if position is None or not candidates:
        return candidates
    axis = 0 if position in ("left", "right") else 1
    sign = 1 if position in ("left", "top") else -1
    coordinate = {i: sign * objects[i].center[axis] for i in candidates}
    best = min(candidates, key=coordinate.get)
    if any(
        coordinate[i] - coordinate[best] < POSITION_MARGIN
        for i in candidates
        if i != best
    ):
        return []
    middle = (width if axis == 0 else height) / 2
    if sign * (objects[best].center[axis] - middle) >= 0:
        return []
    return [best]


def _place_objects(rng, width, height):
    for _ in range(100):
        count = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
        boxes = []
        for _ in range(count):
            for _ in range(50):
                side = int(rng.integers(MIN_OBJECT_SIDE, MAX_OBJECT_SIDE + 1))
                x0 = int(rng.integers(0, width - side + 1))
                y0 = int(rng.integers(0, height - side + 1))
                if all(
                    x0 >= bx + bs + _GAP
                    or bx >= x0 + side + _GAP
                    or y0 >= by + bs + _GAP
                    or by >= y0 + side + _GAP
                    for bx, by, bs in boxes
                ):
                    boxes.append((x0, y0, side))
                    break
        if len(boxes) >= MIN_OBJECTS:
            return boxes
    raise RuntimeError("could not place two objects; the sizes are wrong")


def _draw(draw, shape, x0, y0, side, fill):
    x1, y1 = x0 + side - 1, y0 + side - 1
    if shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    else:
        draw.polygon([(x0 + (side - 1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)


def draw_image(rng):
    """Draws one image and its regions.

    Returns:
      (image, objects, segmentations): a PIL image (RGB, or L for the grey
      ones), the SyntheticObjects in region order, and one uint8 segimg_t
      per object (0 on the object, 1 elsewhere).
    """
    width = int(rng.integers(MIN_IMAGE_SIDE, MAX_IMAGE_SIDE + 1))
    height = int(rng.integers(MIN_IMAGE_SIDE, MAX_IMAGE_SIDE + 1))
    background = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    color_names = list(COLORS)
    objects, segmentations = [], []
    for x0, y0, side in _place_objects(rng, width, height):
        item = SyntheticObject(
            shape=SHAPES[rng.integers(len(SHAPES))],
            color=color_names[rng.integers(len(color_names))],
            x0=x0,
            y0=y0,
            side=side,
        )
        _draw(draw, item.shape, x0, y0, side, COLORS[item.color])
        # Pillow rasterises without anti-aliasing in every mode, so the
        # one-channel drawing covers exactly the object's pixels.
        segmentation = Image.new("L", (width, height), 1)
        _draw(ImageDraw.Draw(segmentation), item.shape, x0, y0, side, 0)
        objects.append(item)
        segmentations.append(np.asarray(segmentation, dtype=np.uint8))
    if rng.random() < GREY_FRACTION:
        image = image.convert("L")
    return image, objects, segmentations


def _render(rng, color, shape, position):
    if shape is not None:
        noun = shape
    elif color is not None:
        noun = _COLOR_NOUNS[rng.integers(len(_COLOR_NOUNS))]
    else:
        noun = _NOUNS[rng.integers(len(_NOUNS))]
    text = f"{color} {noun}" if color else noun
    if position is not None:
        phrases = _POSITION_PHRASES[position]
        phrase = phrases[rng.integers(len(phrases))]
        if phrase == position and rng.random() < 0.3:
            text = f"{position} {text}"
        else:
            text = f"{text} {phrase}"
    if rng.random() < 0.6:
        text = f"the {text}"
    # A few expressions look like crowd-sourced ones (capital, full stop);
    # Hu et al.'s tokenizer lowercases and drops a trailing '.'.
    if rng.random() < 0.1:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.05:
        text += "."
    return text


def describe(rng, objects, target, width, height, use_color):
    """Returns 1-3 distinct expressions naming only objects[target].

    Returns an empty list when no combination of colour, shape and
    position singles the object out. Grey images (use_color False) are
    described without colour words, which their pixels cannot show.
    """
    item = objects[target]
    combinations = []
    for color in (None, item.color) if use_color else (None,):
        for shape in (None, item.shape):
            for position in (None, *POSITIONS):
                if color is None and shape is None and position is None:
                    continue
                found = referents(
                    objects, color, shape, position, width, height
                )
                if found == [target]:
                    combinations.append((color, shape, position))
    if not combinations:
        return []
    count = min(int(rng.integers(1, 4)), len(combinations))
    chosen = rng.choice(len(combinations), size=count, replace=False)
    expressions = [_render(rng, *combinations[i]) for i in chosen]
    return list(dict.fromkeys(expressions))


def _check_count(name, value, minimum):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value!r}."
        )


def _write_mask(path, segmentation):
    buffer = io.BytesIO()
    scipy.io.savemat(
        buffer, {layout.MASK_KEY: segmentation}, do_compression=True
    )
    data = bytearray(buffer.getvalue())
    data[:_MAT_HEADER_SIZE] = _MAT_HEADER.ljust(_MAT_HEADER_SIZE)
    path.write_bytes(bytes(data))


def _write_json(path, content):
    path.write_text(json.dumps(content), encoding="utf-8")


def _write_lines(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_dataset(
    directory, num_train_images, num_test_images, seed, num_val_images=None
):
    """Writes a synthetic dataset in the text_objseg layout.

    Images 1..N are train, then val, then test (ids are their numbers);
    trainval is train + val. Each image is drawn from
    np.random.default_rng([seed, image id]), so the output is a function
    of the arguments. The query files list their regions in a shuffled
    order and referit_imcrop.json lists an image's regions shuffled too,
    as in the release; about 10% of the regions (and every region no
    expression can single out) have no expression.

    Args:
      directory: a new or empty local directory.
      num_train_images, num_test_images: images in train and test (>= 1).
      seed: the generation seed (>= 0).
      num_val_images: images in val (>= 1); default max(1, train // 10).

    Returns:
      split -> {"images", "regions", "expressions", "imlist_images"}:
      what each split's files hold (images counted from the query file).

    Raises:
      ValueError: for a bad count or seed, or a non-empty directory.
    """
    if num_val_images is None:
        num_val_images = max(1, num_train_images // 10)
    _check_count("num_train_images", num_train_images, 1)
    _check_count("num_val_images", num_val_images, 1)
    _check_count("num_test_images", num_test_images, 1)
    _check_count("seed", seed, 0)
    root = pathlib.Path(directory)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(
            f"{root} is not an empty directory; choose a new one so that "
            "no older file mixes in."
        )
    (root / layout.IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    (root / layout.MASK_DIR).mkdir(exist_ok=True)

    sizes = {"train": num_train_images, "val": num_val_images}
    sizes["test"] = num_test_images
    imlists, queries = {}, {}
    imcrops, bboxes, image_sizes = {}, {}, {}
    image_id = 0
    for split, count in sizes.items():
        imlists[split], queries[split] = [], {}
        for _ in range(count):
            image_id += 1
            rng = np.random.default_rng([seed, image_id])
            image, objects, segmentations = draw_image(rng)
            width, height = image.size
            image.save(
                root / layout.image_file(image_id),
                format="JPEG",
                quality=_JPEG_QUALITY,
            )
            names = []
            for region, segmentation in enumerate(segmentations, start=1):
                name = f"{image_id}_{region}"
                names.append(name)
                _write_mask(root / layout.mask_file(name), segmentation)
                rows, cols = np.nonzero(segmentation == 0)
                bboxes[name] = [
                    int(cols.min()),
                    int(rows.min()),
                    int(cols.max()),
                    int(rows.max()),
                ]
                if rng.random() < _UNDESCRIBED_FRACTION:
                    continue
                expressions = describe(
                    rng,
                    objects,
                    region - 1,
                    width,
                    height,
                    use_color=image.mode == "RGB",
                )
                if expressions:
                    queries[split][name] = expressions
            imcrops[f"{image_id}.jpg"] = [
                names[i] for i in rng.permutation(len(names))
            ]
            image_sizes[f"{image_id}.jpg"] = [width, height]
            imlists[split].append(str(image_id))
    imlists["trainval"] = imlists["train"] + imlists["val"]
    queries["trainval"] = {**queries["train"], **queries["val"]}

    summary = {}
    for index, split in enumerate(layout.SPLITS):
        # The release's query files are not grouped by image; shuffling
        # the keys exercises the builder's first-appearance grouping.
        order_rng = np.random.default_rng([seed, _SPLIT_ORDER_STREAM, index])
        names = list(queries[split])
        shuffled = {
            names[i]: queries[split][names[i]]
            for i in order_rng.permutation(len(names))
        }
        _write_json(root / layout.query_file(split), shuffled)
        _write_lines(root / layout.imlist_file(split), imlists[split])
        summary[split] = {
            "images": len({layout.image_id_of(n) for n in shuffled}),
            "regions": len(shuffled),
            "expressions": sum(len(v) for v in shuffled.values()),
            "imlist_images": len(imlists[split]),
        }
    _write_json(root / layout.IMCROP_FILE, imcrops)
    _write_json(root / layout.BBOX_FILE, bboxes)
    _write_json(root / layout.IMSIZE_FILE, image_sizes)
    _write_lines(root / layout.VOCABULARY_FILE, VOCABULARY)
    return summary


def main(argv=None):
    """The command line: writes the dataset, prints what each split holds."""
    parser = argparse.ArgumentParser(
        prog="python -m data_builders.referit.synthetic",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--out", required=True, help="a new directory")
    parser.add_argument("--train_images", type=int, required=True)
    parser.add_argument("--test_images", type=int, required=True)
    parser.add_argument(
        "--val_images",
        type=int,
        default=None,
        help="default: max(1, train_images // 10)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        summary = write_dataset(
            args.out,
            args.train_images,
            args.test_images,
            args.seed,
            num_val_images=args.val_images,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote a synthetic ReferIt-layout dataset to {args.out}")
    for split, counts in summary.items():
        print(
            f"  {split}: {counts['expressions']:,} expressions on "
            f"{counts['regions']:,} regions of {counts['images']:,} images "
            f"(image list: {counts['imlist_images']:,})"
        )
    print(
        "check it with: python -m data_builders.referit.verify "
        f"--manual_dir={args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
