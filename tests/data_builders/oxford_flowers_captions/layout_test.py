"""Tests of the flowers layout readers and the download check."""

import io
import re

import numpy as np
import pytest
import scipy.io
from PIL import Image

from data_builders.oxford_flowers_captions import layout
from tests.data_builders.oxford_flowers_captions import downloads


def _mat(**variables):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    return buffer.getvalue()


def test_names_follow_oxford_and_reed():
    assert layout.image_file(1) == "jpg/image_00001.jpg"
    assert layout.image_name(8189) == "image_08189.jpg"
    assert layout.class_name(77) == "class_00077"
    assert (
        layout.caption_file(1, 6734) == "text_c10/class_00001/image_06734.txt"
    )
    assert layout.class_id_of("class_00102") == 102


def test_captions_drop_blank_lines_and_outer_whitespace():
    data = b"\xef\xbb\xbfthis flower is red.  \r\n\n   \n\tred petals\t\nlast"
    assert layout.parse_captions(data) == (
        "this flower is red.",
        "red petals",
        "last",
    )


def test_fewer_than_ten_captions_are_accepted():
    assert layout.parse_captions(b"only one\n") == ("only one",)


def test_non_ascii_captions_are_kept_as_written():
    text = "a p\u00e9tale flower \u2014 na\u00efve \u201cpink\u201d\n"
    assert layout.parse_captions(text.encode("utf-8")) == (text.strip(),)


def test_captions_that_are_not_utf8_or_empty_are_broken():
    with pytest.raises(layout.BrokenFileError, match="not UTF-8 text"):
        layout.parse_captions("p\u00e9tale\n".encode("latin-1"))
    for data in (b"", b"\n\n", b" \r\n\t\n"):
        with pytest.raises(layout.BrokenFileError, match="holds no caption"):
            layout.parse_captions(data)


def test_class_lists():
    data = b"class_00003\r\n\nclass_00001\n"
    assert layout.parse_class_list(data) == ["class_00003", "class_00001"]
    cases = {
        b"class_00001\nflowers\n": "line 2 ('flowers') is not a class",
        b"class_00103\n": "not one of Oxford-102's classes",
        b"class_00000\n": "not one of Oxford-102's classes",
        b"class_00002\nclass_00002\n": "line 2 repeats class_00002 (line 1)",
        b"\n": "names no class",
        b"class_0000\xe9\n": "not UTF-8",
    }
    for data, message in cases.items():
        with pytest.raises(layout.BrokenFileError, match=re.escape(message)):
            layout.parse_class_list(data)


def test_labels_and_setid():
    labels = layout.parse_labels(_mat(labels=np.array([[77.0, 1.0, 102.0]])))
    assert labels.tolist() == [77, 1, 102]
    assert labels.dtype == np.int64
    # A column vector or integer type is read the same way.
    column = _mat(labels=np.array([[3], [4]], np.uint8))
    assert layout.parse_labels(column).tolist() == [3, 4]
    cases = {
        _mat(labels=np.array([[0, 1]])): "labels holds 0",
        _mat(labels=np.array([[1.5, 2]])): "not an integer",
        _mat(labels=np.ones((2, 2))): "expected a vector",
        _mat(labels=np.zeros((1, 0))): "holds no numbers",
        _mat(other=np.ones((1, 2))): "has no variable labels",
        b"not a mat file at all": "not a readable .mat file",
    }
    for data, message in cases.items():
        with pytest.raises(layout.BrokenFileError, match=re.escape(message)):
            layout.parse_labels(data)

    setid = layout.parse_setid(
        _mat(trnid=[[3, 1]], valid=np.zeros((1, 0)), tstid=[[2]])
    )
    assert {k: v.tolist() for k, v in setid.items()} == {
        "trnid": [3, 1],
        "valid": [],
        "tstid": [2],
    }
    with pytest.raises(layout.BrokenFileError, match="no variable tstid"):
        layout.parse_setid(_mat(trnid=[[1]], valid=[[2]]))
    with pytest.raises(layout.BrokenFileError, match="ids start at 1"):
        layout.parse_setid(_mat(trnid=[[0]], valid=[[2]], tstid=[[3]]))


def test_jpeg_header_reads_size_and_mode_and_rejects_cut_files():
    for mode in ("RGB", "L", "CMYK"):
        data = downloads.jpeg_bytes(Image.new(mode, (37, 23)))
        assert layout.jpeg_header(data) == (37, 23, mode)
    data = downloads.jpeg_bytes(Image.new("RGB", (64, 48)), progressive=True)
    assert layout.jpeg_header(data) == (64, 48, "RGB")
    for cut in (len(data) - 2, len(data) // 2, 100):
        with pytest.raises(layout.BrokenFileError, match="truncated"):
            layout.jpeg_header(data[:cut])
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    with pytest.raises(layout.BrokenFileError, match="not a JPEG"):
        layout.jpeg_header(png.getvalue())


def test_check_download_of_a_clean_copy(synthetic_download):
    root, summary = synthetic_download
    report = layout.check_download(root)
    assert report.problems == []
    assert report.num_images == 20 and report.num_classes == 10
    assert not report.compared
    for split, counts in summary.items():
        assert report.splits[split].classes == counts["classes"]
        assert report.splits[split].images == counts["images"]
        assert report.splits[split].captions == counts["captions"]
    download = report.download
    assert set(download.split_images) == set(layout.SPLITS)
    for split in layout.SPLITS:
        expected = downloads.split_image_ids(root, split)
        assert download.split_images[split] == expected
    assert set(download.labels) == set(range(1, 21))
    assert set(download.oxford_split.values()) <= set(layout.OXFORD_SPLITS)
    assert all(entry.sha256 is None for entry in report.files)


def test_class_splits_are_disjoint_and_cover_every_class(synthetic_download):
    root, _ = synthetic_download
    lists = {s: set(downloads.class_list(root, s)) for s in layout.SPLITS}
    assert not lists["trainval"] & lists["test"]
    assert not lists["train"] & lists["val"]
    assert lists["train"] | lists["val"] == lists["trainval"]
    every = set(downloads.class_list(root, "trainval")) | lists["test"]
    assert every == set((root / layout.ALL_CLASSES_FILE).read_text().split())


def test_a_class_in_no_caption_split_is_a_problem(download_copy):
    names = downloads.class_list(download_copy, "test")
    path = download_copy / layout.CLASS_LIST_FILES["test"]
    path.write_text("".join(f"{name}\n" for name in names[:-1]))
    report = layout.check_download(download_copy)
    assert report.problems == [
        "allclasses.txt: 1 class in neither trainvalclasses.txt nor "
        f"testclasses.txt ({names[-1]})"
    ]


def test_a_trainval_class_outside_train_and_val_is_a_note(download_copy):
    name = downloads.class_list(download_copy, "val")[0]
    path = download_copy / layout.CLASS_LIST_FILES["val"]
    rest = [n for n in downloads.class_list(download_copy, "val") if n != name]
    path.write_text("".join(f"{n}\n" for n in rest))
    report = layout.check_download(download_copy)
    assert report.problems == []
    assert report.notes == [
        "1 trainval class in neither trainclasses.txt nor valclasses.txt "
        f"({name})"
    ]


def test_counts_are_held_against_the_full_download_when_large(
    synthetic_download, monkeypatch
):
    root, _ = synthetic_download
    report = layout.check_download(root, expect_full=True)
    assert report.compared
    assert report.problems[:3] == [
        "imagelabels.mat: labels 20 images, but Oxford-102 has 8,189",
        "allclasses.txt: 10 classes, but Oxford-102 has 102",
        "setid.mat: trnid holds 10 images, but Oxford's split has 1,020",
    ]
    assert any(
        p == "trainvalclasses.txt: 8 classes, but Reed et al.'s split has 82"
        for p in report.problems
    )
    monkeypatch.setattr(layout, "FULL_RELEASE_MIN_IMAGES", 20)
    assert layout.check_download(root).compared


def test_a_missing_directory(tmp_path):
    report = layout.check_download(tmp_path / "nowhere")
    assert report.problems == [f"{tmp_path / 'nowhere'}: not a directory"]
    with pytest.raises(layout.FlowersDownloadError, match="not a directory"):
        report.raise_for_problems()
