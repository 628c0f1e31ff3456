"""Tests of the ReferIt layout readers, example order and download check."""

import io

import numpy as np
import pytest
import scipy.io
from PIL import Image

from data_builders.referit import layout
from tests.data_builders.referit.downloads import read_json, write_json


def _jpeg(size=(37, 23), mode="RGB", **save_args):
    buffer = io.BytesIO()
    Image.new(mode, size, 120).save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def _mat(**variables):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    return buffer.getvalue()


def test_ordered_regions_groups_by_first_appearance_in_imcrop_order():
    queries = {"7_2": ["a"], "3_1": ["b"], "7_1": ["c", "d"], "3_4": ["e"]}
    imcrops = {"3": ["3_4", "3_2", "3_1"], "7": ["7_1", "7_3", "7_2"]}
    assert layout.ordered_regions(queries, imcrops) == [
        ("7", ["7_1", "7_2"]),
        ("3", ["3_4", "3_1"]),
    ]


def test_jpeg_size_reads_the_header_and_rejects_cut_files():
    assert layout.jpeg_size(_jpeg()) == (37, 23)
    assert layout.jpeg_size(_jpeg(mode="L")) == (37, 23)
    assert layout.jpeg_size(_jpeg(mode="CMYK")) == (37, 23)
    assert layout.jpeg_size(_jpeg((64, 48), progressive=True)) == (64, 48)
    data = _jpeg((64, 48))
    for cut in (len(data) - 2, len(data) // 2, 200):
        with pytest.raises(layout.BrokenFileError, match="truncated"):
            layout.jpeg_size(data[:cut])
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    with pytest.raises(layout.BrokenFileError, match="not a JPEG"):
        layout.jpeg_size(png.getvalue())


def test_read_segmentation_and_foreground():
    segmentation = np.array([[0, 1, 2], [255, 0, 1]], np.uint8)
    read = layout.read_segmentation(_mat(segimg_t=segmentation))
    np.testing.assert_array_equal(read, segmentation)
    foreground = layout.foreground(read)
    assert foreground.dtype == np.uint8
    np.testing.assert_array_equal(foreground, [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(layout.BrokenFileError, match="no variable segimg_t"):
        layout.read_segmentation(_mat(other=segmentation))
    with pytest.raises(layout.BrokenFileError, match="2-D"):
        layout.read_segmentation(_mat(segimg_t=np.zeros((2, 2, 2))))
    with pytest.raises(layout.BrokenFileError, match="not a readable"):
        layout.read_segmentation(b"MATLAB 5.0 MAT-file, cut short")


def test_check_download_of_a_clean_copy(synthetic_download):
    root, summary = synthetic_download
    report = layout.check_download(root)
    assert report.problems == []
    for split, counts in summary.items():
        split_counts = report.splits[split]
        assert split_counts.images == counts["images"]
        assert split_counts.regions == counts["regions"]
        assert split_counts.expressions == counts["expressions"]
        assert split_counts.imlist_images == counts["imlist_images"]
        assert not split_counts.compared
    assert report.annotations.vocabulary[:4] == list(layout.SPECIAL_TOKENS)
    assert all(entry.sha256 is None for entry in report.files)


def test_plain_image_ids_are_accepted_as_keys(download_copy):
    for name in (layout.IMCROP_FILE, layout.IMSIZE_FILE):
        content = read_json(download_copy, name)
        write_json(
            download_copy,
            name,
            {key.removesuffix(".jpg"): v for key, v in content.items()},
        )
    assert layout.check_download(download_copy).problems == []


def test_region_names_of_the_2016_files_are_named_as_such(download_copy):
    name = layout.query_file("test")
    queries = read_json(download_copy, name)
    write_json(download_copy, name, {f"{k}.png": v for k, v in queries.items()})
    report = layout.check_download(download_copy, ["test"])
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{name}: region names end in .png")
    assert "first (2016) version" in report.problems[0]


def test_unknown_splits_are_refused(synthetic_download):
    root, _ = synthetic_download
    with pytest.raises(ValueError, match="splits must be among.*validation"):
        layout.check_download(root, ["test", "validation"])
