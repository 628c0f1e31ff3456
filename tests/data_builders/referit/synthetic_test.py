"""Tests of the synthetic ReferIt-layout generator, checked from its pixels."""

import re

import numpy as np
import pytest
import scipy.io
import scipy.ndimage
from PIL import Image

from data_builders.referit import layout, synthetic
from tests.data_builders.referit.downloads import read_json

_HU_SPLIT = re.compile(r"(\W+)")


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def larger_download(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "download"
    summary = synthetic.write_dataset(root, 40, 20, 3, num_val_images=5)
    return root, summary


def test_output_is_a_function_of_the_arguments(tmp_path):
    first = synthetic.write_dataset(tmp_path / "a", 4, 2, 9)
    second = synthetic.write_dataset(tmp_path / "b", 4, 2, 9)
    assert first == second
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    synthetic.write_dataset(tmp_path / "c", 4, 2, 10)
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_layout_files_and_masks(larger_download):
    root, summary = larger_download
    imcrops = read_json(root, layout.IMCROP_FILE)
    sizes = read_json(root, layout.IMSIZE_FILE)
    bboxes = read_json(root, layout.BBOX_FILE)
    assert len(imcrops) == len(sizes) == 65
    modes = set()
    for key, names in imcrops.items():
        image_id = key.removesuffix(".jpg")
        with Image.open(root / layout.image_file(image_id)) as image:
            assert image.format == "JPEG"
            assert image.size == tuple(sizes[key])
            modes.add(image.mode)
        width, height = sizes[key]
        assert 60 <= width <= 100 and 60 <= height <= 100
        assert 2 <= len(names) <= 4
        assert (
            sorted(names)
            == [f"{image_id}_{r}" for r in range(1, 5)][: len(names)]
        )
        covered = np.zeros((height, width), int)
        for name in names:
            segimg_t = scipy.io.loadmat(root / layout.mask_file(name))[
                "segimg_t"
            ]
            assert segimg_t.dtype == np.uint8 and segimg_t.shape == (
                height,
                width,
            )
            assert set(np.unique(segimg_t)) == {0, 1}
            rows, cols = np.nonzero(segimg_t == 0)
            assert bboxes[name] == [
                cols.min(),
                rows.min(),
                cols.max(),
                rows.max(),
            ]
            covered += segimg_t == 0
        assert covered.max() == 1  # Objects never overlap.
    assert modes == {"RGB", "L"}  # Some images are grey.

    queries = {s: read_json(root, layout.query_file(s)) for s in layout.SPLITS}
    assert queries["trainval"] == {**queries["train"], **queries["val"]}
    assert list(queries["trainval"]) != list(queries["train"]) + list(
        queries["val"]
    )  # Shuffled as in the release, not grouped.
    image_sets = {
        s: {layout.image_id_of(n) for n in queries[s]} for s in layout.SPLITS
    }
    assert not image_sets["train"] & image_sets["val"]
    assert not image_sets["trainval"] & image_sets["test"]
    for split in layout.SPLITS:
        imlist = (root / layout.imlist_file(split)).read_text().split()
        assert image_sets[split] <= set(imlist)
        assert summary[split]["imlist_images"] == len(imlist)
        assert summary[split]["expressions"] == sum(
            len(v) for v in queries[split].values()
        )
    assert layout.check_download(root).problems == []


def _pixel_objects(root, image_id, names):
    """Each region's colour, shape and box centre, read from the files."""
    with Image.open(root / layout.image_file(image_id)) as source:
        grey = source.mode == "L"
        pixels = np.asarray(source.convert("RGB"), dtype=float)
    palette = {name: np.array(rgb) for name, rgb in synthetic.COLORS.items()}
    objects = {}
    for name in names:
        segimg_t = scipy.io.loadmat(root / layout.mask_file(name))["segimg_t"]
        region = segimg_t == 0
        rows, cols = np.nonzero(region)
        side = cols.max() - cols.min() + 1
        fill = region.sum() / side**2
        shape = (
            "square" if fill > 0.9 else "circle" if fill > 0.65 else "triangle"
        )
        color = None
        if not grey:
            inside = scipy.ndimage.binary_erosion(region, iterations=2)
            median = np.median(pixels[inside], axis=0)
            color = min(
                palette, key=lambda c: np.abs(palette[c] - median).sum()
            )
        center = ((cols.min() + cols.max()) / 2, (rows.min() + rows.max()) / 2)
        objects[name] = (color, shape, center)
    return grey, objects


def _picked(objects, color, shape, position, width, height):
    """The rule the expressions follow, written again from its description."""
    candidates = [
        name
        for name, (c, s, _) in objects.items()
        if color in (None, c) and shape in (None, s)
    ]
    if position is None:
        return candidates
    axis = 0 if position in ("left", "right") else 1
    sign = 1 if position in ("left", "top") else -1
    value = {n: sign * objects[n][2][axis] for n in candidates}
    best = min(candidates, key=value.get)
    margin = synthetic.POSITION_MARGIN
    if any(value[n] - value[best] < margin for n in candidates if n != best):
        return []
    middle = (width, height)[axis] / 2
    return [best] if sign * (objects[best][2][axis] - middle) < 0 else []


def test_every_expression_picks_out_exactly_its_object(larger_download):
    root, _ = larger_download
    imcrops = read_json(root, layout.IMCROP_FILE)
    sizes = read_json(root, layout.IMSIZE_FILE)
    queries = read_json(root, layout.query_file("trainval"))
    queries.update(read_json(root, layout.query_file("test")))
    kinds = set()
    for key, names in imcrops.items():
        image_id = key.removesuffix(".jpg")
        grey, objects = _pixel_objects(root, image_id, names)
        for name in names:
            for expression in queries.get(name, []):
                words = re.findall(r"[a-z]+", expression.lower())
                colors = [w for w in words if w in synthetic.COLORS]
                shapes = [w for w in words if w in synthetic.SHAPES]
                positions = [w for w in words if w in synthetic.POSITIONS]
                assert max(len(colors), len(shapes), len(positions)) <= 1
                assert colors or shapes or positions, expression
                assert not (grey and colors), expression
                words = (colors or [None])[0], (shapes or [None])[0]
                position = (positions or [None])[0]
                picked = _picked(objects, *words, position, *sizes[key])
                assert picked == [name], (expression, objects)
                kinds.add((bool(colors), bool(shapes), bool(positions)))
    assert len(kinds) == 7  # Every mix of colour, shape and position.


def test_the_vocabulary_covers_every_expression(larger_download):
    root, _ = larger_download
    vocabulary = (root / layout.VOCABULARY_FILE).read_text().splitlines()
    assert vocabulary[:4] == list(layout.SPECIAL_TOKENS)
    assert len(set(vocabulary)) == len(vocabulary)
    for split in layout.SPLITS:
        for expressions in read_json(root, layout.query_file(split)).values():
            for expression in expressions:
                # Hu et al.'s tokenizer: split keeping separators, drop
                # whitespace, lowercase, drop a trailing '.'.
                pieces = _HU_SPLIT.split(expression.strip())
                tokens = [p.lower() for p in pieces if p.strip()]
                if tokens and tokens[-1] == ".":
                    tokens = tokens[:-1]
                assert set(tokens) <= set(vocabulary), expression


def test_bad_arguments_and_used_directories_are_refused(tmp_path):
    with pytest.raises(ValueError, match="num_train_images.*0"):
        synthetic.write_dataset(tmp_path / "a", 0, 2, 1)
    with pytest.raises(ValueError, match="seed.*-1"):
        synthetic.write_dataset(tmp_path / "a", 2, 2, -1)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="not an empty directory"):
        synthetic.write_dataset(tmp_path / "used", 2, 2, 1)


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        synthetic.main([f"--out={out}", "--train_images=3", "--test_images=2"])
        == 0
    )
    printed = capsys.readouterr().out
    assert f"wrote a synthetic ReferIt-layout dataset to {out}" in printed
    assert "  val: " in printed and "image list: 1)" in printed
    assert layout.check_download(out).problems == []
    assert (
        synthetic.main([f"--out={out}", "--train_images=3", "--test_images=2"])
        == 2
    )
    assert "error: " in capsys.readouterr().err
