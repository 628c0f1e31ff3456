"""Tests of the images `python -m experiments.edit` accepts: any mode of a
48x48 silhouette, and one-line refusals of a wrong size or a bomb."""

import os
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from lbie_tf.core import errors, images
from lbie_tf.cosal import editing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PRETRAINED = os.path.join(REPO, "pretrained", "cosal_paper_t4_attn_d8")


def _chunk(kind, data):
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def _write_real_bomb(path, size=40000):
    """A valid 1-bit PNG of size x size white pixels: 1.6 billion pixels in
    a few hundred KB, since zlib squeezes the constant rows."""
    row = b"\0" + b"\xff" * (size // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(
        compressor.compress(row * 1000) for _ in range(size // 1000)
    )
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header))
        file.write(_chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return str(path)


def _write_patched(path, source, width, height):
    """`source` (a PNG file) with its IHDR claiming width x height, CRC
    fixed: only a check of the header can tell it from a real one."""
    data = open(source, "rb").read()
    fields = bytearray(data[12:29])
    fields[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(fields)))
    with open(path, "wb") as file:
        file.write(data[:12] + bytes(fields) + crc + data[33:])
    return str(path)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The --write_example silhouette, its text and the same image in the
    modes editors save."""
    directory = tmp_path_factory.mktemp("edit_input")
    image_path, text_path, _ = editing.write_example(directory)
    with Image.open(image_path) as image:
        rgb = np.asarray(image.convert("RGB"))
    grey = rgb[..., 0]
    shapes = 255 - grey  # opaque where a shape is
    variants = {
        "L": Image.fromarray(grey),
        "1": Image.fromarray(grey).convert("1"),
        "P": Image.fromarray(rgb).convert("P"),
        # Transparent black around opaque black shapes, as editors write.
        "RGBA": Image.fromarray(
            np.dstack([np.zeros_like(rgb), shapes]), "RGBA"
        ),
        "LA": Image.fromarray(np.dstack([np.zeros_like(grey), shapes]), "LA"),
        "I;16": Image.fromarray(grey.astype(np.uint16) * 257),
    }
    paths = {"RGB": image_path}
    for mode, image in variants.items():
        paths[mode] = str(directory / f"{mode.replace(';', '')}.png")
        image.save(paths[mode])
    palette_transparent = Image.fromarray(rgb).convert("P")
    white = palette_transparent.getpixel((0, 0))
    paths["P transparent"] = str(directory / "p_transparent.png")
    palette_transparent.save(paths["P transparent"], transparency=white)
    return {
        "rgb": rgb,
        "paths": paths,
        "text_file": text_path,
        "dir": directory,
    }


def _edit(*args):
    return subprocess.run(
        [sys.executable, "-m", "experiments.edit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_one_line_error(completed, *fragments):
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "mode", ["L", "1", "P", "P transparent", "RGBA", "LA", "I;16"]
)
def test_every_mode_reads_as_the_rgb_silhouette(example, mode):
    pixels = editing.read_silhouette_image(example["paths"][mode])
    assert pixels.dtype == np.uint8 and pixels.shape == (48, 48, 3)
    np.testing.assert_array_equal(pixels, example["rgb"])


def test_a_jpeg_silhouette_is_read(example, tmp_path):
    path = tmp_path / "in.jpg"
    Image.fromarray(example["rgb"]).save(path, quality=95)
    pixels = editing.read_silhouette_image(str(path))
    assert pixels.shape == (48, 48, 3)
    assert np.abs(pixels.astype(int) - example["rgb"]).mean() < 8


@pytest.mark.parametrize(
    "width, height, shown",
    [
        # Above our limit, below Pillow's warning (about 89M pixels).
        (8001, 5000, "image is 8001x5000 = 40005000 pixels"),
        # Between Pillow's warning and its error: no warning escapes.
        (10000, 10000, "image is 10000x10000 = 100000000 pixels"),
        # Above Pillow's error: reported with our limit, not Pillow's.
        (40000, 40000, "image is 1600000000 pixels"),
    ],
)
def test_the_pixel_limit_is_checked_from_the_header(
    example, tmp_path, width, height, shown
):
    path = _write_patched(
        tmp_path / "big.png", example["paths"]["RGB"], width, height
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(errors.ImageError) as info:
            editing.read_silhouette_image(path)
    message = str(info.value)
    assert shown in message
    assert f"limit of {images.MAX_IMAGE_PIXELS} pixels" in message
    assert "(MAX_IMAGE_PIXELS)" in message and "before decoding" in message


@pytest.mark.parametrize("kind", ["real", "patched header"])
def test_edit_refuses_a_decompression_bomb_in_one_line(example, tmp_path, kind):
    if kind == "real":
        bomb = _write_real_bomb(tmp_path / "bomb.png")
        assert os.path.getsize(bomb) < 2_000_000
    else:
        bomb = _write_patched(
            tmp_path / "bomb.png", example["paths"]["RGB"], 40000, 40000
        )
    out = tmp_path / "out.png"
    completed = _edit(
        f"--model={PRETRAINED}",
        f"--image={bomb}",
        f"--text_file={example['text_file']}",
        f"--out={out}",
    )
    _assert_one_line_error(
        completed,
        "image is 1600000000 pixels",
        "above the limit of 40000000 pixels (MAX_IMAGE_PIXELS)",
        "refused before decoding",
    )
    assert not out.exists()
    assert completed.stdout == ""


def test_edit_refuses_a_wrong_size_naming_it(example, tmp_path):
    narrow = tmp_path / "narrow.png"
    Image.fromarray(example["rgb"][:, 1:]).save(narrow)
    out = tmp_path / "out.png"
    completed = _edit(
        f"--model={PRETRAINED}",
        f"--image={narrow}",
        f"--text_file={example['text_file']}",
        f"--out={out}",
    )
    _assert_one_line_error(completed, "is 47x48 pixels", "expected a 48x48")
    assert not out.exists()


def test_edit_gives_an_rgba_silhouette_the_rgb_result(example):
    # Both edits at once: each process spends most of its time starting
    # TensorFlow. Grey and palette images read as the same pixels
    # (test_every_mode_reads_as_the_rgb_silhouette), so they edit alike.
    outs = {
        mode: str(example["dir"] / f"out_{mode}.png")
        for mode in ("RGB", "RGBA")
    }
    processes = {
        mode: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "experiments.edit",
                f"--model={PRETRAINED}",
                f"--image={example['paths'][mode]}",
                f"--text_file={example['text_file']}",
                f"--out={out}",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode, out in outs.items()
    }
    results = {}
    for mode, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        with Image.open(outs[mode]) as image:
            pixels = np.asarray(image)
        # The colour-per-cell table (the path line differs).
        results[mode] = (pixels, stdout.split("colour per cell:")[1])
    np.testing.assert_array_equal(results["RGBA"][0], results["RGB"][0])
    assert results["RGBA"][1] == results["RGB"][1]
