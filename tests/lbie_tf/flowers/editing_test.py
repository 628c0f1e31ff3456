"""Tests of flowers editing and serving: every bad input, the documented
results of unknown and long captions and of other image modes, and the
colour mapped back at the input's own size and lightness."""

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from experiments.configs import flowers_smoke
from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import errors, export_lib, train_lib
from lbie_tf.flowers import editing, lab


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


@pytest.mark.parametrize("text", ["", "   \n\t", "... ,;!"])
def test_a_caption_without_words_is_refused_before_the_model(text, tmp_path):
    with pytest.raises(errors.TextError, match="no word"):
        editing.edit(tmp_path / "none", "none.png", text, tmp_path / "o.png")


def test_a_100_megapixel_image_is_refused_before_decoding(tmp_path):
    path = _png_header_only(tmp_path / "big.png", 10_000, 10_000)
    with pytest.raises(errors.ImageError, match="MAX_IMAGE_PIXELS"):
        editing.edit(tmp_path / "none", path, "red petals", tmp_path / "o.png")


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(errors.ImageError, match="not an image"):
        editing.edit(tmp_path / "none", path, "red petals", tmp_path / "o.png")


def test_a_missing_output_directory_is_refused(tmp_path):
    photo, text = editing.example()
    Image.fromarray(photo).save(tmp_path / "in.png")
    with pytest.raises(errors.OutputError):
        editing.edit(
            tmp_path / "none", tmp_path / "in.png", text, tmp_path / "x/o.png"
        )


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("flowers_edit")
    config = flowers_smoke.get_config("lbie")
    config.data.data_dir = str(root / "data")
    train_lib.train_and_evaluate(config, root / "run")
    export_lib.export_model(root / "run", root / "export")
    return root / "export"


def _lightness(rgb):
    return lab.rgb_to_lab(np.asarray(rgb, np.float32) / 255.0).numpy()[..., 0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, suffix",
    [("RGB", ".jpg"), ("CMYK", ".jpg"), ("I;16", ".png"), ("L", ".png")],
)
def test_other_modes_and_sizes_are_coloured_at_their_size(
    export_dir, tmp_path, mode, suffix
):
    photo, text = editing.example()
    image = Image.fromarray(photo).resize((75, 61))
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), np.uint16) * 257
        image = Image.fromarray(grey)
    else:
        image = image.convert(mode)
    path = tmp_path / f"in{suffix}"
    image.save(path)
    out = tmp_path / "out.png"
    lines = editing.edit(export_dir, path, text, out)
    result = np.asarray(Image.open(out))
    assert result.shape == (61, 75, 3) and "75x61" in lines[0]
    panels = Image.open(editing.panels_path(out))
    assert panels.size[1] == 61 and panels.size[0] > 3 * 75
    # The colours sit on the input's own lightness (up to the 8-bit
    # rounding and the gamut clip of the inverse).
    source = np.asarray(Image.open(path).convert("RGB"))
    if mode != "I;16":
        difference = np.abs(_lightness(result) - _lightness(source))
        assert np.median(difference) < 2.0


@pytest.mark.slow
def test_unknown_and_long_captions_give_a_result(export_dir, tmp_path):
    photo, _ = editing.example()
    Image.fromarray(photo).save(tmp_path / "in.png")
    for index, text in enumerate(["zzyzx quokka", "red petals " * 2000]):
        out = tmp_path / f"out{index}.png"
        editing.edit(export_dir, tmp_path / "in.png", text, out)
        assert np.asarray(Image.open(out)).shape == photo.shape


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_serving_bytes_takes_images_of_several_sizes(export_dir):
    loaded = tf.saved_model.load(str(export_dir / "saved_model"))
    serve = loaded.signatures["serving_bytes"]
    photo, text = editing.example()
    small = np.asarray(Image.fromarray(photo).resize((40, 30)))
    answer = serve(
        image_bytes=tf.constant([_png(photo), _png(small)]),
        text=tf.constant([text, "blue petals"]),
    )["png_bytes"].numpy()
    sizes = [Image.open(io.BytesIO(data)).size for data in answer]
    assert sizes == [(96, 96), (40, 30)]
    # The same picture as serving_default for the same input.
    default = loaded.signatures["serving_default"](
        image=tf.constant(photo[None]), caption=tf.constant([text])
    )["colorized"].numpy()[0]
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(answer[0]))), default
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"image_bytes\[1\]"
    ):
        serve(
            image_bytes=tf.constant([_png(photo), b"broken"]),
            text=tf.constant([text, text]),
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="one word"):
        serve(image_bytes=tf.constant([_png(photo)]), text=tf.constant([" "]))


@pytest.mark.slow
def test_figure7_command_writes_seven_panels(export_dir, tmp_path):
    photo, _ = editing.example()
    Image.fromarray(photo).save(tmp_path / "in.png")
    out = tmp_path / "figure7.png"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.flowers_figure7",
            f"--model={export_dir}",
            f"--image={tmp_path / 'in.png'}",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(summary["per_color"]) == 6
    assert 0.0 <= summary["hit_rate"] <= 1.0
    assert Image.open(out).size[0] == 7 * photo.shape[1]
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.flowers_figure7",
            f"--model={export_dir}",
            f"--image={tmp_path / 'none.png'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error:")
