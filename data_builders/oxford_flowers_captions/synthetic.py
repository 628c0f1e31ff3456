"""Writes a synthetic flowers download in the Oxford-102 + captions layout.

Each image shows one flower: petals (ellipses) around a round centre on a
leafy green and brown background. The class decides the petal colour
(one of COLORS), the number of petals and their shape; the captions are
English sentences naming the petal colour. The files follow layout.py
exactly (real JPEGs, MATLAB v5 .mat files, text files), so the
`oxford_flowers_captions` builder, the verify command and the models run
on it offline.

Usage:
  python -m data_builders.oxford_flowers_captions.synthetic --out=DIR \
      [--num_classes=10] [--num_images_per_class=2] [--image_size=64] \
      [--seed=0]
"""

import argparse
import io
import math
import pathlib
import sys

import numpy as np
import scipy.io
from PIL import Image, ImageDraw

from data_builders.oxford_flowers_captions import layout

# Petal colours; class k has COLORS[k % 7], so every colour recurs every
# seven classes and the test classes' colours are also train colours.
COLORS = {
    "white": (245, 245, 238),
    "red": (205, 30, 40),
    "orange": (240, 135, 25),
    "yellow": (245, 215, 35),
    "blue": (55, 85, 215),
    "purple": (125, 50, 165),
    "pink": (240, 135, 185),
}
COLOR_NAMES = tuple(COLORS)
# Petal shape word -> length / width of a petal ellipse.
PETAL_SHAPES = {"broad": 1.3, "oval": 2.0, "narrow": 3.2}
MIN_PETALS = 4
GREY_FRACTION = 0.1
FEWER_CAPTIONS_FRACTION = 0.1
# Side lengths vary in [0.75, 1.25] x image_size, independently.
SIZE_SPREAD = 0.25

_CENTER_COLORS = {"yellow": (235, 195, 30), "brown": (110, 70, 30)}
_LEAF_COLORS = (
    (40, 95, 35),
    (60, 120, 45),
    (30, 70, 30),
    (85, 110, 40),
    (95, 70, 40),
    (70, 50, 30),
)
_GROUNDS = ((45, 80, 35), (60, 70, 35), (70, 60, 40))
_COUNT_WORDS = ("four", "five", "six", "seven", "eight")
_TEMPLATES = (
    "this flower has {petal} petals and a {center} center.",
    "the flower is {petal} in color.",
    "a flower with {count} {shape} {petal} petals.",
    "this flower has {shape} petals that are {petal} and a {center} center.",
    "the petals of this flower are {petal} and the center is {center}.",
    "{count} {petal} petals surround the {center} stamen of this flower.",
    "this {petal} flower has {count} {shape} petals.",
    "a {petal} flower with a {center} center and green leaves.",
    "the {petal} petals are {shape} and the pistil is {center}.",
    "this flower is {petal} and has {count} petals around a {center} center.",
)
_JPEG_QUALITY = 90
_COLOR_JITTER = 12
# scipy writes the creation time into the 116-byte descriptive text that
# opens a MATLAB 5 file; a fixed text keeps the output byte-identical for a
# seed (MATLAB and scipy only need the "MATLAB 5.0 MAT-file" prefix).
_MAT_HEADER = (
    b"MATLAB 5.0 MAT-file, written by "
    b"data_builders.oxford_flowers_captions.synthetic"
)
_MAT_HEADER_SIZE = 116
_CLASS_ORDER_STREAM = 1_000_003


def petal_color(class_id):
    """The petal colour word of a 1-based class id."""
    return COLOR_NAMES[class_id % len(COLOR_NAMES)]


def petal_count(class_id):
    """The number of petals of a class (4-8; neighbours of a colour differ)."""
    return MIN_PETALS + (class_id // len(COLOR_NAMES)) % len(_COUNT_WORDS)


def petal_shape(class_id):
    """The petal shape word of a class: broad, oval or narrow."""
    return tuple(PETAL_SHAPES)[class_id % len(PETAL_SHAPES)]


def center_color(class_id):
    """The centre colour word: yellow, or brown on yellow/orange petals."""
    return (
        "brown" if petal_color(class_id) in ("yellow", "orange") else "yellow"
    )


def class_splits(num_classes):
    """Split -> 1-based class ids: test last, val before it, train first.

    Test and val get max(1, num_classes // 5) classes each (20 of 102, as
    in Reed et al.); trainval is train + val. With num_classes >= 8 every
    test colour is also a train colour.
    """
    held_out = max(1, num_classes // 5)
    train = list(range(1, num_classes - 2 * held_out + 1))
    val = list(range(train[-1] + 1, train[-1] + 1 + held_out))
    test = list(range(val[-1] + 1, num_classes + 1))
    return {"train": train, "val": val, "trainval": train + val, "test": test}


def _ellipse(cx, cy, a, b, angle, steps=24):
    cos_r, sin_r = math.cos(angle), math.sin(angle)
    points = []
    for i in range(steps):
        t = 2 * math.pi * i / steps
        x, y = a * math.cos(t), b * math.sin(t)
        points.append((cx + x * cos_r - y * sin_r, cy + x * sin_r + y * cos_r))
    return points


def _jitter(rng, rgb):
    noise = rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, size=3)
    return tuple(int(v) for v in np.clip(np.add(rgb, noise), 0, 255))


def draw_flower(rng, class_id, width, height):
    """Draws one flower of a class on a leafy background (an RGB image)."""
    image = Image.new("RGB", (width, height), _GROUNDS[rng.integers(3)])
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    for _ in range(int(rng.integers(8, 16))):
        leaf = _ellipse(
            rng.uniform(0, width),
            rng.uniform(0, height),
            rng.uniform(0.12, 0.3) * side,
            rng.uniform(0.05, 0.1) * side,
            rng.uniform(0, math.pi),
        )
        color = _LEAF_COLORS[rng.integers(len(_LEAF_COLORS))]
        draw.polygon(leaf, fill=_jitter(rng, color))
    radius = rng.uniform(0.3, 0.42) * side
    cx = width / 2 + rng.uniform(-0.1, 0.1) * width
    cy = height / 2 + rng.uniform(-0.1, 0.1) * height
    center_radius = 0.28 * radius
    length = (radius - 0.5 * center_radius) / 2
    breadth = length / PETAL_SHAPES[petal_shape(class_id)]
    count = petal_count(class_id)
    petal_rgb = _jitter(rng, COLORS[petal_color(class_id)])
    start = rng.uniform(0, 2 * math.pi)
    for i in range(count):
        angle = start + 2 * math.pi * i / count
        distance = 0.5 * center_radius + length
        petal = _ellipse(
            cx + distance * math.cos(angle),
            cy + distance * math.sin(angle),
            length,
            breadth,
            angle,
        )
        draw.polygon(petal, fill=petal_rgb)
    center_rgb = _jitter(rng, _CENTER_COLORS[center_color(class_id)])
    draw.ellipse(
        (
            cx - center_radius,
            cy - center_radius,
            cx + center_radius,
            cy + center_radius,
        ),
        fill=center_rgb,
    )
    return image


def describe(rng, class_id, count):
    """`count` captions of a flower of the class, naming its petal colour."""
    words = {
        "petal": petal_color(class_id),
        "center": center_color(class_id),
        "count": _COUNT_WORDS[petal_count(class_id) - MIN_PETALS],
        "shape": petal_shape(class_id),
    }
    captions = []
    for index in rng.integers(len(_TEMPLATES), size=count):
        text = _TEMPLATES[index].format(**words)
        # Some captions are written as sentences, most (as in Reed et al.'s
        # files) in lower case.
        if rng.random() < 0.2:
            text = text[0].upper() + text[1:]
        captions.append(text)
    return captions


def _check_count(name, value, minimum, maximum=None):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = (
            f">= {minimum}" if maximum is None else f"in {minimum}-{maximum}"
        )
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}.")


def _write_mat(path, variables):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    data = bytearray(buffer.getvalue())
    data[:_MAT_HEADER_SIZE] = _MAT_HEADER.ljust(_MAT_HEADER_SIZE)
    path.write_bytes(bytes(data))


def _write_lines(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_synthetic_download(
    directory,
    num_classes=10,
    num_images_per_class=2,
    image_size=64,
    seed=0,
):
    """Writes a synthetic download in the layout of layout.py.

    Classes 1..num_classes (class_splits decides train / val / test), each
    with num_images_per_class images. Image ids are assigned to classes in
    a seeded shuffled order (so a class's images are not consecutive);
    each image is drawn from np.random.default_rng([seed, image id]), so the
    output is a function of the arguments. About a tenth of the images are
    grey, and a tenth have 5-9 captions instead of 10. In each class a
    quarter of the images (at least one) go to Oxford's trnid, a quarter
    to valid (when two or more remain) and the rest to tstid.

    Args:
      directory: a new or empty local directory.
      num_classes: classes, 3-102.
      num_images_per_class: images per class (>= 1).
      image_size: the nominal side in pixels (>= 16); each image's width
        and height lie in [0.75, 1.25] x image_size.
      seed: the generation seed (>= 0).

    Returns:
      split -> {"classes", "images", "captions"}: what each split holds.

    Raises:
      ValueError: for a bad argument, or a non-empty directory.
    """
    _check_count("num_classes", num_classes, 3, layout.NUM_CLASSES)
    _check_count("num_images_per_class", num_images_per_class, 1)
    _check_count("image_size", image_size, 16)
    _check_count("seed", seed, 0)
    root = pathlib.Path(directory)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(
            f"{root} is not an empty directory; choose a new one so that "
            "no older file mixes in."
        )
    (root / layout.IMAGE_DIR).mkdir(parents=True, exist_ok=True)

    order_rng = np.random.default_rng([seed, _CLASS_ORDER_STREAM])
    classes = np.repeat(np.arange(1, num_classes + 1), num_images_per_class)
    labels = classes[order_rng.permutation(classes.size)]
    setid = {key: [] for key in layout.OXFORD_SPLITS}
    quarter = max(1, num_images_per_class // 4)
    for class_id in range(1, num_classes + 1):
        ids = (np.flatnonzero(labels == class_id) + 1).tolist()
        ids = [ids[i] for i in order_rng.permutation(len(ids))]
        setid["trnid"] += ids[:quarter]
        rest = ids[quarter:]
        if len(rest) >= 2:
            setid["valid"] += rest[:quarter]
            rest = rest[quarter:]
        setid["tstid"] += rest

    low = round((1 - SIZE_SPREAD) * image_size)
    high = round((1 + SIZE_SPREAD) * image_size)
    captions_of = {}
    for image_id, class_id in enumerate(labels.tolist(), start=1):
        rng = np.random.default_rng([seed, image_id])
        width, height = (int(v) for v in rng.integers(low, high + 1, size=2))
        image = draw_flower(rng, class_id, width, height)
        if rng.random() < GREY_FRACTION:
            image = image.convert("L")
        image.save(
            root / layout.image_file(image_id),
            format="JPEG",
            quality=_JPEG_QUALITY,
        )
        count = layout.CAPTIONS_PER_IMAGE
        if rng.random() < FEWER_CAPTIONS_FRACTION:
            count = int(rng.integers(5, layout.CAPTIONS_PER_IMAGE))
        captions_of[image_id] = describe(rng, class_id, count)
        path = root / layout.caption_file(class_id, image_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_lines(path, captions_of[image_id])

    # MATLAB stores vectors as 1 x N doubles, as Oxford's files do.
    _write_mat(
        root / layout.LABELS_FILE,
        {layout.LABELS_KEY: labels.astype(np.float64)[None, :]},
    )
    _write_mat(
        root / layout.SETID_FILE,
        {
            key: np.asarray(sorted(ids), np.float64)[None, :]
            for key, ids in setid.items()
            if ids
        }
        | {
            key: np.zeros((1, 0), np.float64)
            for key, ids in setid.items()
            if not ids
        },
    )
    names = [layout.class_name(c) for c in range(1, num_classes + 1)]
    _write_lines(root / layout.ALL_CLASSES_FILE, names)
    summary = {}
    for split, class_ids in class_splits(num_classes).items():
        _write_lines(
            root / layout.CLASS_LIST_FILES[split],
            [layout.class_name(c) for c in class_ids],
        )
        image_ids = [
            i for i, c in enumerate(labels.tolist(), start=1) if c in class_ids
        ]
        summary[split] = {
            "classes": len(class_ids),
            "images": len(image_ids),
            "captions": sum(len(captions_of[i]) for i in image_ids),
        }
    return summary


def main(argv=None):
    """The command line: writes the download, prints what each split holds."""
    parser = argparse.ArgumentParser(
        prog="python -m data_builders.oxford_flowers_captions.synthetic",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--out", required=True, help="a new directory")
    parser.add_argument("--num_classes", type=int, default=10)
    parser.add_argument("--num_images_per_class", type=int, default=2)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        summary = write_synthetic_download(
            args.out,
            num_classes=args.num_classes,
            num_images_per_class=args.num_images_per_class,
            image_size=args.image_size,
            seed=args.seed,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote a synthetic Oxford-102-layout flowers download to {args.out}")
    for split, counts in summary.items():
        print(
            f"  {split}: {counts['classes']:,} classes, {counts['images']:,} "
            f"images, {counts['captions']:,} captions"
        )
    print(
        "check it with: python -m data_builders.oxford_flowers_captions.verify"
        f" --manual_dir={args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
