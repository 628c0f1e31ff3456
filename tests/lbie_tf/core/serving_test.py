"""Tests of lbie_tf.core.serving: header sizes, the pixel limit, decoding of
every PNG mode as the edit CLI converts it, and PNG encoding."""

import io
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from lbie_tf.core import images, serving


def _png(image, **options):
    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _jpeg(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _with_png_size(data, width, height):
    """`data` (a PNG) with its IHDR claiming width x height, CRC fixed, so
    that only a check of the header can tell it from a real large PNG."""
    fields = bytearray(data[12:29])  # chunk type + the 13 IHDR data bytes
    fields[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(fields)))
    return data[:12] + bytes(fields) + crc + data[33:]


def _with_jpeg_size(data, width, height):
    """`data` (a baseline JPEG) with its SOF0 frame header claiming
    width x height."""
    start = data.index(b"\xff\xc0")
    size = struct.pack(">HH", height, width)
    return data[: start + 5] + size + data[start + 9 :]


def _pixels(seed=0, size=(48, 48, 3)):
    return np.random.default_rng(seed).integers(0, 256, size).astype(np.uint8)


def _decode(data, expected_size=None):
    function = tf.function(
        lambda d: serving.decode_image(d, expected_size),
        input_signature=[tf.TensorSpec([], tf.string)],
    )
    return function(tf.constant(data)).numpy()


def _decode_batch(datas, expected_size=(48, 48)):
    function = tf.function(
        lambda d: serving.decode_images(d, expected_size),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    return function(tf.constant(datas, dtype=tf.string)).numpy()


def _header_size(data):
    function = tf.function(
        serving.header_size, input_signature=[tf.TensorSpec([], tf.string)]
    )
    return tuple(int(v) for v in function(tf.constant(data)))


def test_the_pixel_limit_is_one_documented_constant():
    assert serving.MAX_IMAGE_PIXELS == images.MAX_IMAGE_PIXELS == 40_000_000


def test_header_size_reads_png_and_jpeg_headers():
    png = _png(_pixels(size=(20, 30, 3)))
    jpeg = _jpeg(_pixels(size=(20, 30, 3)))
    assert _header_size(png) == (20, 30)
    assert _header_size(jpeg) == (20, 30)
    # Sizes no decoder could hold in memory: read from the header alone.
    assert _header_size(_with_png_size(png, 40000, 30000)) == (30000, 40000)
    assert _header_size(_with_jpeg_size(jpeg, 40000, 30000)) == (30000, 40000)


def _modes():
    """{name: PNG bytes} of every mode a user's editor may save."""
    rgb = _pixels(1)
    grey = rgb[..., 0]
    alpha = _pixels(2, (48, 48))
    palette = Image.fromarray(rgb).convert("P")
    return {
        "RGB": _png(rgb),
        "L": _png(grey),
        "L with a transparent value": _png(grey, transparency=int(grey[0, 0])),
        "1": _png(Image.fromarray(grey).convert("1")),
        "P": _png(palette),
        "P with a transparent entry": _png(palette, transparency=3),
        "RGBA": _png(np.dstack([rgb, alpha])),
        "LA": _png(Image.fromarray(np.dstack([grey, alpha]), "LA")),
        "I;16": _png(grey.astype(np.uint16) * 257 + alpha),
        "I;16 with a transparent value": _png(
            grey.astype(np.uint16) * 257, transparency=int(grey[0, 0]) * 257
        ),
    }


@pytest.mark.parametrize("mode", list(_modes()))
def test_decode_image_converts_each_mode_as_the_edit_cli_does(mode):
    data = _modes()[mode]
    with Image.open(io.BytesIO(data)) as image:
        expected = images.to_rgb(image)
    decoded = _decode(data, (48, 48))
    assert decoded.dtype == np.uint8 and decoded.shape == (48, 48, 3)
    np.testing.assert_array_equal(decoded, expected)


def _chunk(kind, data):
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def _low_depth_png(values, depth, colour_type, extra=b""):
    """A PNG of `values` (one row) at a bit depth below 8, written by hand:
    Pillow writes grey at 8 bits only."""
    bits = "".join(format(int(v), f"0{depth}b") for v in values)
    bits += "0" * (-len(bits) % 8)
    row = b"\0" + int(bits, 2).to_bytes(len(bits) // 8, "big")
    header = struct.pack(
        ">IIBBBBB", len(values), 1, depth, colour_type, 0, 0, 0
    )
    return (
        serving.PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", zlib.compress(row))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_low_bit_depth_grey_is_opaque_unless_trns_says_otherwise(depth):
    values = np.arange(2**depth)
    grey = values * 255 // (2**depth - 1)
    expected = np.repeat(grey[None, :, None], 3, axis=-1).astype(np.uint8)
    opaque = _low_depth_png(values, depth, colour_type=0)
    np.testing.assert_array_equal(_decode(opaque), expected)
    # tRNS marks the grey value 1 transparent: that pixel becomes white.
    trns = _chunk(b"tRNS", struct.pack(">H", 1))
    expected[0, 1] = 255
    transparent = _low_depth_png(values, depth, 0, trns)
    np.testing.assert_array_equal(_decode(transparent), expected)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_low_bit_depth_palette_images(depth):
    values = np.arange(2**depth)
    colours = _pixels(6, (2**depth, 3))
    palette = _chunk(b"PLTE", colours.tobytes())
    data = _low_depth_png(values, depth, colour_type=3, extra=palette)
    np.testing.assert_array_equal(_decode(data), colours[None])
    with Image.open(io.BytesIO(data)) as image:
        np.testing.assert_array_equal(images.to_rgb(image), colours[None])
    # tRNS gives the first two entries alpha 0 and 128, the rest stay opaque.
    trns = _chunk(b"tRNS", bytes([0, 128]))
    data = _low_depth_png(values, depth, 3, palette + trns)
    alpha = np.full((1, 2**depth, 1), 255, np.uint8)
    alpha[0, :2, 0] = (0, 128)
    expected = images.composite_on_white(np.dstack([colours[None], alpha]))
    np.testing.assert_array_equal(_decode(data), expected)
    with Image.open(io.BytesIO(data)) as image:
        np.testing.assert_array_equal(images.to_rgb(image), expected)


def test_transparent_pixels_become_white_whatever_colour_they_hold():
    rgba = np.zeros((48, 48, 4), np.uint8)  # transparent black, as editors
    rgba[10:20, 10:20, 3] = 255  # an opaque black square
    decoded = _decode(_png(rgba))
    expected = np.full((48, 48, 3), 255, np.uint8)
    expected[10:20, 10:20] = 0
    np.testing.assert_array_equal(decoded, expected)


def test_decode_image_reads_jpeg():
    pixels = _pixels(3)
    data = _jpeg(pixels)
    np.testing.assert_array_equal(
        _decode(data, (48, 48)), tf.io.decode_jpeg(data, channels=3).numpy()
    )


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_decode_image_refuses_more_pixels_than_the_limit(kind):
    if kind == "png":
        bomb = _with_png_size(_png(_pixels()), 40000, 40000)
    else:
        bomb = _with_jpeg_size(_jpeg(_pixels()), 40000, 40000)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _decode(bomb)
    message = info.value.message
    assert "image is 40000x40000 = 1600000000 pixels" in message
    assert "above the limit of 40000000 pixels (MAX_IMAGE_PIXELS)" in message
    assert "refused before decoding" in message


def test_the_limit_itself_is_allowed():
    # 8000 x 5000 is exactly the limit: the pixel check passes, and what
    # fails is decoding the 48 x 48 pixel data behind the patched header.
    at_limit = _with_png_size(_png(_pixels()), 8000, 5000)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _decode(at_limit)
    assert "MAX_IMAGE_PIXELS" not in info.value.message
    above = _with_png_size(_png(_pixels()), 8001, 5000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="MAX_IMAGE"):
        _decode(above)


@pytest.mark.parametrize(
    "data",
    [b"", b"ab", b"GIF89a" + bytes(40), b"circle is red. " * 4],
    ids=["empty", "two bytes", "gif", "text"],
)
def test_decode_image_refuses_bytes_that_are_not_png_or_jpeg(data):
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="neither a PNG nor a JPEG"
    ):
        _decode(data)


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_decode_image_refuses_a_damaged_file(kind):
    data = _png(_pixels()) if kind == "png" else _jpeg(_pixels())
    with pytest.raises(tf.errors.InvalidArgumentError, match="Invalid"):
        _decode(data[: len(data) // 2])


def test_decode_images_names_the_element_and_its_wrong_size():
    good = _png(_pixels())
    narrow = _png(_pixels(size=(48, 47, 3)))
    assert _decode_batch([good, good]).shape == (2, 48, 48, 3)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _decode_batch([good, narrow])
    assert "image_bytes[1]: image is 47x48 pixels; expected 48x48" in (
        info.value.message
    )


def test_decode_images_of_an_empty_batch():
    assert _decode_batch([]).shape == (0, 48, 48, 3)


def test_encode_png_round_trips():
    batch = np.stack([_pixels(4), _pixels(5)])
    encoded = serving.encode_png(tf.constant(batch)).numpy()
    assert encoded.shape == (2,)
    for data, pixels in zip(encoded, batch, strict=True):
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            np.testing.assert_array_equal(np.asarray(image), pixels)


def test_bytes_input_signature_names_and_types():
    specs = serving.bytes_input_signature()
    assert [(s.name, s.dtype, s.shape.as_list()) for s in specs] == [
        ("image_bytes", tf.string, [None]),
        ("text", tf.string, [None]),
    ]
