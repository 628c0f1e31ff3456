"""Draws one CoSaL example (image, target, label maps, 9 sentences) in NumPy."""

import numpy as np
from PIL import Image, ImageDraw

from data_builders.cosal import vocabulary

GRID_SIZE = 3
NUM_CELLS = GRID_SIZE * GRID_SIZE
BASE_IMAGE_SIZE = 48
MIN_COLORS = 2
MAX_COLORS = len(vocabulary.COLOR_NAMES)
SPLIT_INDEX = {"train": 0, "test": 1}

# The shape table (paper section 4.1): the (low, high) range of every
# uniform draw a shape needs, as fractions of the cell side, in drawing order.
_CENTRE = ((0.45, 0.55), (0.45, 0.55))
SHAPE_PARAMETER_RANGES = (
    ((0.1, 0.3), (0.1, 0.3), (0.7, 0.9), (0.7, 0.9)),  # rectangle corners
    _CENTRE,  # half fat ellipse
    _CENTRE,  # fat ellipse
    (  # triangle: bottom left, bottom right, apex (up)
        (0.2, 0.4),
        (0.7, 0.8),
        (0.7, 0.8),
        (0.7, 0.8),
        (0.4, 0.6),
        (0.2, 0.3),
    ),
    (  # reverse triangle: top left, top right, apex (down)
        (0.2, 0.4),
        (0.2, 0.3),
        (0.7, 0.8),
        (0.2, 0.3),
        (0.4, 0.6),
        (0.7, 0.8),
    ),
    _CENTRE,  # thin ellipse
    _CENTRE,  # half thin ellipse
    (  # diamond: left, top, right, bottom
        (0.2, 0.3),
        (0.45, 0.55),
        (0.45, 0.55),
        (0.2, 0.3),
        (0.7, 0.8),
        (0.45, 0.55),
        (0.45, 0.55),
        (0.7, 0.8),
    ),
    _CENTRE + ((0.3, 0.4),),  # circle: centre, radius
)
_LOW = np.array([r[0] for ranges in SHAPE_PARAMETER_RANGES for r in ranges])
_HIGH = np.array([r[1] for ranges in SHAPE_PARAMETER_RANGES for r in ranges])
_STARTS = np.cumsum([0] + [len(r) for r in SHAPE_PARAMETER_RANGES])

# (row, column) step from the reference cell to the described cell: "red
# below circle" means the cell under the circle is red (paper section 4.1).
RELATION_OFFSETS = {
    "above": (-1, 0),
    "below": (1, 0),
    "left": (0, -1),
    "right": (0, 1),
}


def _neighbour_triples():
    """All (reference cell, relation, target cell) of the 3 x 3 grid."""
    triples = []
    for reference in range(NUM_CELLS):
        row, col = divmod(reference, GRID_SIZE)
        for relation in vocabulary.RELATIONS:
            d_row, d_col = RELATION_OFFSETS[relation]
            if 0 <= row + d_row < GRID_SIZE and 0 <= col + d_col < GRID_SIZE:
                target = (row + d_row) * GRID_SIZE + col + d_col
                triples.append((reference, relation, target))
    return tuple(triples)


NEIGHBOUR_TRIPLES = _neighbour_triples()


def validate_parameters(num_direct, num_colors, image_size):
    """Raises ValueError naming any CoSaL generation parameter out of range."""
    if isinstance(num_direct, bool) or not isinstance(
        num_direct, (int, np.integer)
    ):
        raise ValueError(
            f"num_direct must be an integer in 1..{NUM_CELLS}, "
            f"got {num_direct!r}."
        )
    if not 1 <= num_direct <= NUM_CELLS:
        raise ValueError(
            f"num_direct must be in 1..{NUM_CELLS} (the number of direct "
            f"sentences among the {NUM_CELLS}), got {num_direct}."
        )
    if isinstance(num_colors, bool) or not isinstance(
        num_colors, (int, np.integer)
    ):
        raise ValueError(
            f"num_colors must be an integer in {MIN_COLORS}..{MAX_COLORS}, "
            f"got {num_colors!r}."
        )
    if not MIN_COLORS <= num_colors <= MAX_COLORS:
        raise ValueError(
            f"num_colors must be in {MIN_COLORS}..{MAX_COLORS} (the first "
            f"num_colors of {', '.join(vocabulary.COLOR_NAMES)}), "
            f"got {num_colors}."
        )
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, (int, np.integer))
        or image_size <= 0
        or image_size % BASE_IMAGE_SIZE
    ):
        raise ValueError(
            f"image_size must be a positive multiple of {BASE_IMAGE_SIZE} "
            f"(48, 96, 144, ...), got {image_size!r}."
        )


def example_rng(seed, split, index):
    """The random generator of example `index` of `split` ('train'/'test').

    Example i of split k draws from SeedSequence(seed, spawn_key=(k, i)),
    which is SeedSequence(seed).spawn(2)[k].spawn(i + 1)[i]: the splits and
    the examples are independent streams, and any example can be regenerated
    on its own.
    """
    if split not in SPLIT_INDEX:
        raise ValueError(
            f"split must be one of {sorted(SPLIT_INDEX)}, got {split!r}."
        )
    sequence = np.random.SeedSequence(
        int(seed), spawn_key=(SPLIT_INDEX[split], int(index))
    )
    return np.random.default_rng(sequence)


def _draw_shape(draw, shape_id, params, origin, cell_size, fill):
    """Draws one filled shape (paper section 4.1) into its cell."""
    x0, y0 = origin
    coords = (params * cell_size).astype(np.int64)
    if shape_id in (0, 3, 4, 7):  # polygons, vertices as (x, y) pairs
        points = [
            (x0 + int(coords[i]), y0 + int(coords[i + 1]))
            for i in range(0, len(coords), 2)
        ]
        if shape_id == 0:
            draw.rectangle([points[0], points[1]], fill=fill)
        else:
            # The outline makes the fill include every edge pixel, as
            # OpenCV's fillConvexPoly did.
            draw.polygon(points, fill=fill, outline=fill)
        return
    cx, cy = x0 + int(coords[0]), y0 + int(coords[1])
    if shape_id == 8:
        half_width = half_height = int(coords[2])
    elif shape_id in (1, 2):  # fat: wide
        half_width, half_height = cell_size // 3, cell_size // 6
    else:  # 5, 6 thin: tall
        half_width, half_height = cell_size // 6, cell_size // 3
    box = [cx - half_width, cy - half_height, cx + half_width, cy + half_height]
    if shape_id in (1, 6):
        # cv2.ellipse(..., 0, 0, 180, thickness=-1) in the original: with y
        # pointing down, angles 0..180 sweep the LOWER half, filled as a
        # sector bounded by the horizontal diameter. Pillow measures angles
        # the same way (clockwise from 3 o'clock).
        draw.pieslice(box, 0, 180, fill=fill)
    else:
        draw.ellipse(box, fill=fill)


def render(cell_shapes, cell_colors, shape_parameters, image_size):
    """Draws the label maps and images of one example.

    Args:
      cell_shapes: (9,) shape id in each cell, row-major.
      cell_colors: (9,) colour index in each cell.
      shape_parameters: (35,) uniform draws, each shape's slice laid out as
        in SHAPE_PARAMETER_RANGES (fractions of the cell side).
      image_size: side S of the square image.

    Returns:
      image, target (S, S, 3) uint8 and color_labels, shape_labels (S, S)
      uint8. Labels come from the drawing masks, never from pixel colours
      (black is a shape colour too).
    """
    cell_size = image_size // GRID_SIZE
    canvas = Image.new("L", (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    for cell in range(NUM_CELLS):
        shape_id = int(cell_shapes[cell])
        row, col = divmod(cell, GRID_SIZE)
        params = shape_parameters[_STARTS[shape_id] : _STARTS[shape_id + 1]]
        origin = (col * cell_size, row * cell_size)
        _draw_shape(draw, shape_id, params, origin, cell_size, shape_id + 1)
    shape_labels = np.asarray(canvas, dtype=np.uint8)

    color_of_shape = np.zeros(NUM_CELLS + 1, np.uint8)
    color_of_shape[np.asarray(cell_shapes) + 1] = np.asarray(cell_colors) + 1
    color_labels = color_of_shape[shape_labels]
    palette = np.array(vocabulary.LABEL_RGB, np.uint8)
    target = palette[color_labels]
    image = np.where(shape_labels[..., None] > 0, 0, 255).astype(np.uint8)
    image = np.broadcast_to(image, target.shape).copy()
    return image, target, color_labels, shape_labels


def describe(rng, num_direct, reproduce_coverage_bug=False):
    """Chooses which cells the 9 sentences describe (paper section 4.1).

    The first num_direct sentences are direct, about num_direct distinct
    random cells. The rest come from a chain: repeatedly pick, uniformly among
    all grid-neighbour sentences whose reference cell is known and whose
    target is not, one sentence; its target becomes known. The known set
    starts with every direct cell (every cell is then described exactly once),
    or with the first direct cell only when reproduce_coverage_bug is True
    (the released generator: relational targets may then repeat direct
    cells, and about two cells per image stay undescribed).

    Returns:
      A list of 9 tuples: ("direct", cell) or
      ("relational", reference_cell, relation, target_cell).
    """
    direct_cells = [int(c) for c in rng.permutation(NUM_CELLS)[:num_direct]]
    plan = [("direct", cell) for cell in direct_cells]
    known = {direct_cells[0]} if reproduce_coverage_bug else set(direct_cells)
    for _ in range(NUM_CELLS - num_direct):
        candidates = [
            t for t in NEIGHBOUR_TRIPLES if t[0] in known and t[2] not in known
        ]
        reference, relation, target = candidates[rng.integers(len(candidates))]
        plan.append(("relational", reference, relation, target))
        known.add(target)
    return plan


def generate_example(
    rng,
    num_direct,
    num_colors=MAX_COLORS,
    image_size=BASE_IMAGE_SIZE,
    reproduce_coverage_bug=False,
):
    """Generates one CoSaL example from a numpy Generator.

    Returns:
      A dict with the builder's features: image, target (S, S, 3) uint8;
      color_labels (0 background, 1..C), shape_labels (0 background, shape
      id + 1) (S, S) uint8; sentences (9, 3) int32 token ids; sentence_text
      (9 str); is_direct (9,) bool; cell_shapes, cell_colors (9,) int32.
    """
    validate_parameters(num_direct, num_colors, image_size)
    cell_shapes = rng.permutation(NUM_CELLS).astype(np.int32)
    cell_colors = rng.integers(0, num_colors, NUM_CELLS).astype(np.int32)
    shape_parameters = _LOW + (_HIGH - _LOW) * rng.random(_LOW.shape[0])
    image, target, color_labels, shape_labels = render(
        cell_shapes, cell_colors, shape_parameters, image_size
    )

    ids = vocabulary.TOKEN_IDS
    shape_token = [ids[name] for name in vocabulary.SHAPE_NAMES]
    color_token = [ids[name] for name in vocabulary.COLOR_NAMES]
    sentences = np.zeros((vocabulary.NUM_SENTENCES, 3), np.int32)
    is_direct = np.zeros(vocabulary.NUM_SENTENCES, bool)
    for i, item in enumerate(describe(rng, num_direct, reproduce_coverage_bug)):
        if item[0] == "direct":
            cell = item[1]
            sentences[i] = (
                shape_token[cell_shapes[cell]],
                ids["is"],
                color_token[cell_colors[cell]],
            )
            is_direct[i] = True
        else:
            _, reference, relation, target_cell = item
            sentences[i] = (
                color_token[cell_colors[target_cell]],
                ids[relation],
                shape_token[cell_shapes[reference]],
            )
    return {
        "image": image,
        "target": target,
        "color_labels": color_labels,
        "shape_labels": shape_labels,
        "sentences": sentences,
        "sentence_text": [vocabulary.ids_to_sentence(s) for s in sentences],
        "is_direct": is_direct,
        "cell_shapes": cell_shapes,
        "cell_colors": cell_colors,
    }


def generate_split(
    split,
    num_examples,
    seed,
    num_direct,
    num_colors=MAX_COLORS,
    image_size=BASE_IMAGE_SIZE,
    reproduce_coverage_bug=False,
    start=0,
):
    """Yields (index, example) for examples start..num_examples-1 of a split.

    Streams: one example at a time, nothing is kept.
    """
    validate_parameters(num_direct, num_colors, image_size)
    for index in range(start, num_examples):
        rng = example_rng(seed, split, index)
        yield (
            index,
            generate_example(
                rng, num_direct, num_colors, image_size, reproduce_coverage_bug
            ),
        )
