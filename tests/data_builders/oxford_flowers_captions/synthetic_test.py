"""Tests of the synthetic flowers writer, checked from its files and pixels."""

import numpy as np
import pytest
from PIL import Image

from data_builders.oxford_flowers_captions import layout, synthetic
from tests.data_builders.oxford_flowers_captions import downloads


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def larger_download(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "download"
    summary = synthetic.write_synthetic_download(
        root, num_classes=15, num_images_per_class=6, image_size=64, seed=2
    )
    return root, summary


def test_the_default_download_has_twenty_images(tmp_path):
    summary = synthetic.write_synthetic_download(tmp_path / "small")
    assert len(downloads.labels(tmp_path / "small")) == 20
    assert summary["trainval"]["images"] + summary["test"]["images"] == 20


def test_output_is_a_function_of_the_arguments(tmp_path):
    arguments = dict(num_classes=4, num_images_per_class=2, image_size=24)
    first = synthetic.write_synthetic_download(tmp_path / "a", **arguments)
    second = synthetic.write_synthetic_download(tmp_path / "b", **arguments)
    assert first == second
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    synthetic.write_synthetic_download(tmp_path / "c", **arguments, seed=1)
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_the_layout_verifies_and_matches_the_summary(larger_download):
    root, summary = larger_download
    report = layout.check_download(root)
    assert report.problems == []
    for split, counts in summary.items():
        assert report.splits[split].images == counts["images"]
        assert report.splits[split].captions == counts["captions"]
    labels = downloads.labels(root)
    assert sorted(labels.tolist()) == sorted(list(range(1, 16)) * 6)
    # A class's images are not consecutive ids.
    assert labels.tolist() != sorted(labels.tolist())
    setid = downloads.setid(root)
    ids = sorted(np.concatenate(list(setid.values())).tolist())
    assert ids == list(range(1, 91))
    assert {k: v.size for k, v in setid.items()} == {
        "trnid": 15,
        "valid": 15,
        "tstid": 60,
    }
    sizes, modes = set(), set()
    for image_id in range(1, 91):
        with Image.open(root / layout.image_file(image_id)) as image:
            assert image.format == "JPEG"
            sizes.add(image.size)
            modes.add(image.mode)
            assert all(48 <= side <= 80 for side in image.size)
    assert modes == {"RGB", "L"}  # Some images are grey.
    assert any(w % 2 or h % 2 for w, h in sizes) and len(sizes) > 10
    fewer = report.splits["trainval"].fewer_captions
    fewer += report.splits["test"].fewer_captions
    assert fewer  # Some images have 5-9 captions.


def test_captions_name_the_petal_colour(larger_download):
    root, _ = larger_download
    labels = downloads.labels(root).tolist()
    for image_id, class_id in enumerate(labels, start=1):
        lines = downloads.caption_path(root, image_id).read_text().splitlines()
        assert 5 <= len(lines) <= 10
        color = synthetic.petal_color(class_id)
        for line in lines:
            words = set(line.lower().rstrip(".").split())
            assert color in words, line
            others = words & set(synthetic.COLORS) - {color}
            # Only the centre may name another colour word (yellow).
            assert others <= {synthetic.center_color(class_id)}, line


def test_the_pixels_show_the_petal_colour(larger_download):
    root, _ = larger_download
    names = list(synthetic.COLORS)
    palette = np.array([synthetic.COLORS[name] for name in names], float)
    labels = downloads.labels(root).tolist()
    checked = 0
    for image_id, class_id in enumerate(labels, start=1):
        with Image.open(root / layout.image_file(image_id)) as image:
            if image.mode != "RGB":
                continue
            pixels = np.asarray(image, dtype=float).reshape(-1, 3)
        distance = np.abs(pixels[:, None, :] - palette[None]).sum(axis=2)
        nearest = distance.argmin(axis=1)[distance.min(axis=1) < 60]
        counts = np.bincount(nearest, minlength=len(names))
        # Among the pixels of a named colour, the petals' colour leads, and
        # the petals cover a fair part of the picture.
        color = synthetic.petal_color(class_id)
        assert names[counts.argmax()] == color, (image_id, color, counts)
        assert counts.max() > 0.03 * len(pixels), (image_id, counts)
        checked += 1
    assert checked > 60


def test_class_splits_keep_test_colours_among_train_colours():
    for num_classes in [*range(8, 31), 102]:
        splits = synthetic.class_splits(num_classes)
        assert splits["trainval"] == splits["train"] + splits["val"]
        assert sorted(splits["trainval"] + splits["test"]) == list(
            range(1, num_classes + 1)
        )
        train_colours = {synthetic.petal_color(c) for c in splits["train"]}
        for class_id in splits["test"]:
            assert synthetic.petal_color(class_id) in train_colours
    full = synthetic.class_splits(102)
    assert [len(full[s]) for s in ("train", "val", "test")] == [62, 20, 20]
    # Classes sharing a colour differ in their petals.
    assert synthetic.petal_count(1) != synthetic.petal_count(8)


def test_bad_arguments_and_used_directories_are_refused(tmp_path):
    with pytest.raises(ValueError, match="num_classes.*3-102.*2"):
        synthetic.write_synthetic_download(tmp_path / "a", num_classes=2)
    with pytest.raises(ValueError, match="num_images_per_class.*0"):
        synthetic.write_synthetic_download(
            tmp_path / "a", num_images_per_class=0
        )
    with pytest.raises(ValueError, match="seed.*-1"):
        synthetic.write_synthetic_download(tmp_path / "a", seed=-1)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="not an empty directory"):
        synthetic.write_synthetic_download(tmp_path / "used")


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    assert synthetic.main([f"--out={out}", "--num_classes=5"]) == 0
    printed = capsys.readouterr().out
    assert f"flowers download to {out}" in printed
    assert "  test: 1 classes, 2 images" in printed
    assert layout.check_download(out).problems == []
    assert synthetic.main([f"--out={out}"]) == 2
    assert "error: " in capsys.readouterr().err
