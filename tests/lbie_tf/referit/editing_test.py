"""Tests of ReferIt editing: every bad input, and the documented results
of long and unknown texts and of other image modes."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import errors
from lbie_tf.referit import editing


def _png_header_only(path, width, height):
    """A PNG that claims width x height pixels but holds no pixel data."""

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_refused_before_the_model(text, tmp_path):
    with pytest.raises(errors.TextError, match="empty"):
        editing.edit(tmp_path / "none", "none.png", text, tmp_path / "o.png")


def test_a_100_megapixel_image_is_refused_before_decoding(tmp_path):
    path = _png_header_only(tmp_path / "big.png", 10_000, 10_000)
    with pytest.raises(errors.ImageError, match="MAX_IMAGE_PIXELS"):
        editing.edit(tmp_path / "none", path, "the red one", tmp_path / "o.png")


def test_a_missing_output_directory_is_refused(tmp_path):
    photo, text, _ = editing.example()
    Image.fromarray(photo).save(tmp_path / "in.png")
    with pytest.raises(errors.OutputError):
        editing.edit(
            tmp_path / "none", tmp_path / "in.png", text, tmp_path / "x/o.png"
        )


@pytest.fixture(scope="module")
def workdir(referit_smoke_run):
    return referit_smoke_run[0]


def _mask(workdir, image_path, text, out_path):
    editing.edit(workdir, image_path, text, out_path)
    assert editing.overlay_path(out_path).endswith("_overlay.png")
    return np.asarray(Image.open(out_path))


@pytest.mark.slow
def test_long_text_reads_its_first_20_tokens(workdir, tmp_path):
    photo, _, _ = editing.example()
    Image.fromarray(photo).save(tmp_path / "in.png")
    words = ["red", "circle", "on", "the", "left"] * 2000
    long_text = " ".join(words)
    assert len(long_text) > 10_000
    long_mask = _mask(
        workdir, tmp_path / "in.png", long_text, tmp_path / "a.png"
    )
    short_mask = _mask(
        workdir, tmp_path / "in.png", " ".join(words[:20]), tmp_path / "b.png"
    )
    assert long_mask.shape == photo.shape[:2]
    np.testing.assert_array_equal(long_mask, short_mask)


@pytest.mark.slow
def test_unknown_words_only_read_as_unk(workdir, tmp_path):
    photo, _, _ = editing.example()
    Image.fromarray(photo).save(tmp_path / "in.png")
    first = _mask(
        workdir, tmp_path / "in.png", "zorblax quux", tmp_path / "a.png"
    )
    second = _mask(
        workdir, tmp_path / "in.png", "frobnic wug", tmp_path / "b.png"
    )
    np.testing.assert_array_equal(first, second)
    assert set(np.unique(first)) <= {0, 255}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_other_image_modes_are_converted(workdir, tmp_path, mode):
    photo, text, _ = editing.example()
    path = tmp_path / f"in_{mode}.png"
    Image.fromarray(photo).convert(mode).save(path)
    mask = _mask(workdir, path, text, tmp_path / "o.png")
    assert mask.shape == photo.shape[:2]
    overlay = np.asarray(Image.open(editing.overlay_path(tmp_path / "o.png")))
    assert overlay.shape == (*photo.shape[:2], 3)
