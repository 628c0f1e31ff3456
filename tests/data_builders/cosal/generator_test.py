"""Generator-level checks of CoSaL against spec section 3, on many examples."""

import hashlib

import numpy as np
import pytest

from data_builders.cosal import generator, vocabulary

SHAPES = vocabulary.SHAPE_NAMES
COLORS = vocabulary.COLOR_NAMES
# Written from the spec, not taken from the generator.
STEP = {"above": (-1, 0), "below": (1, 0), "left": (0, -1), "right": (0, 1)}
RGB = {
    "blue": (0, 0, 255),
    "light green": (0, 255, 0),
    "red": (255, 0, 0),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "yellow": (255, 255, 0),
}


def _examples(count, split="train", seed=0, **kwargs):
    kwargs.setdefault("num_direct", 4)
    return [
        ex for _, ex in generator.generate_split(split, count, seed, **kwargs)
    ]


def _shape_cells(example):
    """Cell of every shape id, read from the shape label map alone."""
    labels = example["shape_labels"]
    cell_size = labels.shape[0] // 3
    cells = {}
    for shape_id in range(9):
        rows, cols = np.nonzero(labels == shape_id + 1)
        assert rows.size > 0, f"shape {SHAPES[shape_id]} missing"
        cell_rows = set(rows // cell_size)
        cell_cols = set(cols // cell_size)
        assert len(cell_rows) == 1 and len(cell_cols) == 1, "shape spans cells"
        cells[shape_id] = 3 * cell_rows.pop() + cell_cols.pop()
    return cells


def _cell_color(example, cell):
    """Colour index in a cell, read from the colour label map alone."""
    labels = example["color_labels"]
    shapes = example["shape_labels"]
    size = labels.shape[0] // 3
    row, col = divmod(cell, 3)
    window = np.s_[row * size : (row + 1) * size, col * size : (col + 1) * size]
    values = set(labels[window][shapes[window] > 0].tolist())
    assert len(values) == 1, f"cell {cell} has colours {values}"
    return values.pop() - 1


def _parse(sentence_ids):
    words = [vocabulary.TOKENS[i] for i in sentence_ids]
    if words[1] == "is":
        assert words[0] in SHAPES and words[2] in COLORS
        return ("direct", SHAPES.index(words[0]), COLORS.index(words[2]))
    assert words[0] in COLORS and words[1] in STEP and words[2] in SHAPES
    return ("relational", COLORS.index(words[0]), words[1], words[2])


def _described_cells(example):
    """Cells the sentences name, in sentence order, and the check of each."""
    cells = _shape_cells(example)
    described = []
    for sentence in example["sentences"]:
        parsed = _parse(sentence)
        if parsed[0] == "direct":
            _, shape_id, color = parsed
            cell = cells[shape_id]
            reference = None
        else:
            _, color, relation, reference_shape = parsed
            reference = cells[SHAPES.index(reference_shape)]
            row, col = divmod(reference, 3)
            d_row, d_col = STEP[relation]
            assert 0 <= row + d_row < 3 and 0 <= col + d_col < 3, (
                "relation points outside the grid"
            )
            cell = 3 * (row + d_row) + col + d_col
        assert _cell_color(example, cell) == color, "sentence is false"
        described.append((cell, reference))
    return described


CONFIGS = [
    dict(num_direct=1),
    dict(num_direct=4),
    dict(num_direct=6, num_colors=3),
    dict(num_direct=8, num_colors=2),
    dict(num_direct=9),
    dict(num_direct=4, reproduce_coverage_bug=True),
    dict(num_direct=6, image_size=96, reproduce_coverage_bug=True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_every_sentence_is_true_of_its_image(config):
    for example in _examples(60, **config):
        described = _described_cells(example)
        # Direct sentences come first, then the relational ones.
        kinds = [r is None for _, r in described]
        assert kinds == [True] * config["num_direct"] + [False] * (
            9 - config["num_direct"]
        )
        np.testing.assert_array_equal(example["is_direct"], kinds)
        assert example["sentence_text"] == [
            vocabulary.ids_to_sentence(s) for s in example["sentences"]
        ]
        # The lead's parser reads the text back to the same ids.
        parsed = vocabulary.text_to_sentence_ids(
            ". ".join(example["sentence_text"])
        )
        np.testing.assert_array_equal(parsed, example["sentences"])


@pytest.mark.parametrize("num_direct", [1, 2, 4, 6, 8, 9])
def test_fixed_chain_describes_every_cell_once_in_known_order(num_direct):
    for example in _examples(100, num_direct=num_direct):
        described = _described_cells(example)
        assert sorted(cell for cell, _ in described) == list(range(9))
        known = {cell for cell, ref in described if ref is None}
        for cell, reference in described[num_direct:]:
            assert reference in known, "reference not yet known"
            known.add(cell)


def _expected_described_with_bug(num_direct):
    # The chain grows a connected set of 10 - k cells from the first direct
    # cell, blind to the other k - 1 direct cells, which are a uniform
    # sample of the remaining 8 cells; k - 1 of those 8 stay out of the
    # chain, so each other direct cell adds a new cell with probability
    # (k - 1) / 8 (hypergeometric).
    k = num_direct
    return (10 - k) + (k - 1) * (k - 1) / 8


@pytest.mark.parametrize("num_direct", [4, 6, 8])
def test_coverage_bug_leaves_cells_undescribed(num_direct):
    examples = _examples(
        400, seed=3, num_direct=num_direct, reproduce_coverage_bug=True
    )
    counts = []
    for example in examples:
        described = _described_cells(example)
        first = described[0][0]
        known = {first}
        for cell, reference in described[num_direct:]:
            assert reference in known and cell not in known
            known.add(cell)
        counts.append(len({cell for cell, _ in described}))
    expected = _expected_described_with_bug(num_direct)
    # The count is 10 - k plus a hypergeometric(8, k - 1, k - 1) variable
    # whose standard deviation is at most 0.75, so the mean of 400 has a
    # standard error below 0.04: 0.15 is about four of them.
    assert abs(np.mean(counts) - expected) < 0.15
    if num_direct == 4:
        assert abs(np.mean(counts) - 7.1) < 0.15  # the original's ~7.1


def test_each_shape_exactly_once_and_label_maps_agree_with_images():
    for config in (dict(num_colors=6), dict(num_colors=4, image_size=96)):
        for example in _examples(100, seed=5, **config):
            cells = _shape_cells(example)
            assert sorted(cells.values()) == list(range(9))
            for shape_id, cell in cells.items():
                assert example["cell_shapes"][cell] == shape_id
                assert example["cell_colors"][cell] == _cell_color(
                    example, cell
                )
            shapes = example["shape_labels"]
            colors = example["color_labels"]
            np.testing.assert_array_equal(shapes > 0, colors > 0)
            palette = np.array(
                [(255, 255, 255)] + [RGB[name] for name in COLORS], np.uint8
            )
            np.testing.assert_array_equal(example["target"], palette[colors])
            silhouette = np.where(shapes > 0, 0, 255)
            for channel in range(3):
                np.testing.assert_array_equal(
                    example["image"][..., channel], silhouette
                )


def test_only_the_first_num_colors_colours_are_used():
    for num_colors in (2, 3, 6):
        colors = np.concatenate(
            [
                ex["cell_colors"]
                for ex in _examples(60, seed=1, num_colors=num_colors)
            ]
        )
        assert set(colors.tolist()) == set(range(num_colors))


def _offsets(mask, cell_size):
    rows, cols = np.nonzero(mask)
    top = rows.min() // cell_size * cell_size
    left = cols.min() // cell_size * cell_size
    return rows - top, cols - left


def _within(value, low, high, s):
    return int(low * s) <= value <= int(high * s)


@pytest.mark.parametrize("image_size", [48, 96])
def test_shape_geometry_follows_the_spec_table(image_size):
    s = image_size // 3
    for example in _examples(80, seed=11, image_size=image_size):
        labels = example["shape_labels"]
        for shape_id, name in enumerate(SHAPES):
            mask = labels == shape_id + 1
            ys, xs = _offsets(mask, s)
            x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
            width, height = x1 - x0 + 1, y1 - y0 + 1
            row_widths = [np.sum(ys == y) for y in range(y0, y1 + 1)]
            if name == "rectangle":
                assert _within(x0, 0.1, 0.3, s) and _within(y0, 0.1, 0.3, s)
                assert _within(x1, 0.7, 0.9, s) and _within(y1, 0.7, 0.9, s)
                assert mask.sum() == width * height  # filled
            elif name in ("fat ellipse", "thin ellipse"):
                a, b = (s // 3, s // 6) if "fat" in name else (s // 6, s // 3)
                assert (width, height) == (2 * a + 1, 2 * b + 1)
                assert _within(x0 + a, 0.45, 0.55, s)
                assert _within(y0 + b, 0.45, 0.55, s)
            elif name in ("half fat ellipse", "half thin ellipse"):
                a, b = (s // 3, s // 6) if "fat" in name else (s // 6, s // 3)
                # Lower half (y down): the diameter is the top row, the
                # widest one, and the shape hangs below it.
                assert (width, height) == (2 * a + 1, b + 1)
                assert row_widths[0] == width == max(row_widths)
                assert row_widths[-1] < width
                assert _within(y0, 0.45, 0.55, s)
            elif name == "triangle":  # apex up
                assert _within(y0, 0.2, 0.3, s) and _within(y1, 0.7, 0.8, s)
                assert _within(x0, 0.2, 0.4, s) and _within(x1, 0.7, 0.8, s)
                # Two base vertices low, the apex high: the area's centroid
                # (the mean of the vertices) sits below the box's middle.
                assert ys.mean() > (y0 + y1) / 2
            elif name == "reverse triangle":  # apex down
                assert _within(y0, 0.2, 0.3, s) and _within(y1, 0.7, 0.8, s)
                assert _within(x0, 0.2, 0.4, s) and _within(x1, 0.7, 0.8, s)
                assert ys.mean() < (y0 + y1) / 2
            elif name == "diamond":
                assert _within(x0, 0.2, 0.3, s) and _within(x1, 0.7, 0.8, s)
                assert _within(y0, 0.2, 0.3, s) and _within(y1, 0.7, 0.8, s)
                assert max(row_widths) > max(row_widths[0], row_widths[-1])
            else:  # circle
                radius = (width - 1) // 2
                assert width == height == 2 * radius + 1
                assert _within(radius, 0.3, 0.4, s)
                assert _within(x0 + radius, 0.45, 0.55, s)


def _digest(example):
    h = hashlib.sha256(example["image"].tobytes())
    h.update(example["target"].tobytes())
    h.update(example["sentences"].tobytes())
    return h.hexdigest()


def test_deterministic_and_train_test_never_share_an_example():
    train = _examples(300, "train", seed=7)
    again = _examples(300, "train", seed=7)
    test = _examples(300, "test", seed=7)
    other_seed = _examples(300, "train", seed=8)
    assert [_digest(e) for e in train] == [_digest(e) for e in again]
    train_digests = {_digest(e) for e in train}
    assert len(train_digests) == 300
    assert not train_digests & {_digest(e) for e in test}
    assert not train_digests & {_digest(e) for e in other_seed}
    # Any example can be regenerated on its own from its index.
    alone = generator.generate_example(
        generator.example_rng(7, "train", 123), num_direct=4
    )
    assert _digest(alone) == _digest(train[123])


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(num_direct=0), "num_direct"),
        (dict(num_direct=10), "num_direct"),
        (dict(num_direct=4.0), "num_direct"),
        (dict(num_direct=4, num_colors=1), "num_colors"),
        (dict(num_direct=4, num_colors=7), "num_colors"),
        (dict(num_direct=4, image_size=50), "image_size"),
        (dict(num_direct=4, image_size=0), "image_size"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs, argument):
    value = kwargs.get(argument)
    with pytest.raises(ValueError, match=f"{argument}.*{value}"):
        generator.generate_example(np.random.default_rng(0), **kwargs)


def test_bad_split_raises_value_error():
    with pytest.raises(ValueError, match="split.*validation"):
        generator.example_rng(0, "validation", 0)
