"""The task-agnostic half of the `serving_bytes` signature: image bytes in,
PNG bytes out, with the pixel limit checked before any pixel is decoded."""

from lbie_tf.core import images
from lbie_tf.core import task as task_lib

BYTES_SIGNATURE_NAME = "serving_bytes"
# The pixel limit of every input image; lbie_tf.core.images says why.
MAX_IMAGE_PIXELS = images.MAX_IMAGE_PIXELS
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every JPEG starts with the SOI marker followed by another marker.
JPEG_SIGNATURE = b"\xff\xd8\xff"
# A PNG's first chunk is IHDR: 8 signature bytes, then length (4), type (4),
# width (4, big-endian) and height (4, big-endian), so bytes 16..24, then
# bit depth (byte 24) and colour type (byte 25).
_PNG_HEADER_LENGTH = 26
_ACCEPTED = "send the bytes of a PNG or JPEG file"


def bytes_input_signature():
    """`image_bytes` (string [B]: PNG or JPEG files) and `text` (string [B]:
    one description per image, as the task's editor reads it)."""
    import tensorflow as tf

    return [
        tf.TensorSpec([None], tf.string, name="image_bytes"),
        tf.TensorSpec([None], tf.string, name="text"),
    ]


def _big_endian(tf, raw):
    """The unsigned big-endian integer that the 4 bytes `raw` spell."""
    digits = tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.int64)
    return tf.reduce_sum(
        digits * tf.constant([2**24, 2**16, 2**8, 1], tf.int64)
    )


def _message(tf, *parts):
    """One string tensor of `parts` (Python strings, string tensors and
    integer tensors, the latter in decimal), for an assertion message."""
    pieces = [
        tf.strings.as_string(part)
        if isinstance(part, tf.Tensor) and part.dtype.is_integer
        else part
        for part in parts
    ]
    return tf.strings.join(pieces)


def _header_prefix(tf, data):
    """The first 26 bytes of `data`, zero-padded when it is shorter, so that
    every header field can be sliced without an out-of-range error."""
    prefix = tf.strings.substr(data, 0, _PNG_HEADER_LENGTH)
    padded = tf.strings.join([prefix, b"\0" * _PNG_HEADER_LENGTH])
    return tf.strings.substr(padded, 0, _PNG_HEADER_LENGTH)


def _has_trns(tf, data):
    """Whether the PNG `data` has a tRNS chunk before its first IDAT, where
    the PNG standard puts it: the chunks are walked by their lengths, so
    the bytes of other chunks cannot be mistaken for one."""
    length = tf.cast(tf.strings.length(data), tf.int64)

    def step(position, found, done):
        head = tf.strings.substr(
            data, tf.cast(tf.minimum(position, length), tf.int32), 8
        )
        complete = tf.equal(tf.strings.length(head), 8)
        padded = tf.strings.join([head, b"\0" * 8])
        kind = tf.strings.substr(padded, 4, 4)
        found = tf.logical_or(found, tf.equal(kind, b"tRNS"))
        done = tf.logical_or(
            tf.logical_not(complete),
            tf.logical_or(tf.equal(kind, b"IDAT"), tf.equal(kind, b"IEND")),
        )
        # length + type + data + CRC.
        size = _big_endian(tf, tf.strings.substr(padded, 0, 4))
        return position + 12 + size, found, done

    _, found, _ = tf.while_loop(
        lambda position, found, done: tf.logical_not(done),
        step,
        (tf.constant(len(PNG_SIGNATURE), tf.int64), False, False),
    )
    return found


def image_format(data):
    """(is_png, is_jpeg): bool scalars read from the first bytes of `data`
    (a string scalar); a PNG must start with its IHDR chunk, as the PNG
    standard requires."""
    import tensorflow as tf

    prefix = _header_prefix(tf, data)
    is_png = tf.logical_and(
        tf.equal(tf.strings.substr(prefix, 0, 8), PNG_SIGNATURE),
        tf.equal(tf.strings.substr(prefix, 12, 4), b"IHDR"),
    )
    is_png = tf.logical_and(
        is_png, tf.strings.length(data) >= _PNG_HEADER_LENGTH
    )
    is_jpeg = tf.equal(tf.strings.substr(prefix, 0, 3), JPEG_SIGNATURE)
    return is_png, is_jpeg


def header_size(data, name="image"):
    """(height, width) as int64 scalars, read from the header of `data` (the
    bytes of one PNG or JPEG file) without decoding any pixel.

    PNG: the IHDR fields; JPEG: tf.image.extract_jpeg_shape, which reads the
    markers up to the frame header. Other bytes fail with
    InvalidArgumentError.
    """
    import tensorflow as tf

    is_png, is_jpeg = image_format(data)
    known = tf.debugging.Assert(
        tf.logical_or(is_png, is_jpeg),
        [
            _message(
                tf,
                name,
                " is neither a PNG nor a JPEG file (its first bytes are ",
                tf.strings.format("{}", tf.strings.substr(data, 0, 8)),
                f"); {_ACCEPTED}",
            )
        ],
    )
    with tf.control_dependencies([known]):
        data = tf.identity(data)

    def png_size():
        prefix = _header_prefix(tf, data)
        width = _big_endian(tf, tf.strings.substr(prefix, 16, 4))
        height = _big_endian(tf, tf.strings.substr(prefix, 20, 4))
        return tf.stack([height, width])

    def jpeg_size():
        shape = tf.image.extract_jpeg_shape(data, output_type=tf.int64)
        return shape[:2]

    size = tf.cond(is_png, png_size, jpeg_size)
    return size[0], size[1]


def decode_image(
    data, expected_size=None, max_pixels=MAX_IMAGE_PIXELS, name="image"
):
    """Decodes the bytes of one PNG or JPEG file to uint8 RGB [H, W, 3].

    Checked from the header first, so that nothing is decoded when a check
    fails (each an InvalidArgumentError naming the problem): the bytes are a
    PNG or JPEG, width x height <= `max_pixels`, and (if given) the size is
    `expected_size` = (height, width). Grey, palette and 16-bit images become
    8-bit RGB; alpha is composited on white with
    `lbie_tf.core.images.composite_on_white`'s formula (DEVIATIONS.md, "Edit
    CLI input").
    """
    import tensorflow as tf

    height, width = header_size(data, name)
    pixels = height * width
    checks = [
        tf.debugging.Assert(
            pixels <= max_pixels,
            [
                _message(
                    tf,
                    name,
                    ": image is ",
                    width,
                    "x",
                    height,
                    " = ",
                    pixels,
                    f" pixels, above the limit of {max_pixels} pixels "
                    "(MAX_IMAGE_PIXELS); it is refused before decoding",
                )
            ],
        )
    ]
    if expected_size is not None:
        with tf.control_dependencies(checks):
            checks.append(
                tf.debugging.Assert(
                    tf.logical_and(
                        tf.equal(height, expected_size[0]),
                        tf.equal(width, expected_size[1]),
                    ),
                    [
                        _message(
                            tf,
                            name,
                            ": image is ",
                            width,
                            "x",
                            height,
                            " pixels; expected "
                            f"{expected_size[1]}x{expected_size[0]}",
                        )
                    ],
                )
            )
    with tf.control_dependencies(checks):
        data = tf.identity(data)
    is_png, _ = image_format(data)

    def png():
        # Four channels, so that a tRNS chunk (a transparent palette entry,
        # grey value or colour) becomes alpha like an alpha channel does.
        # uint16 holds every intermediate: c * a + 255 * (255 - a) + 127
        # <= 65152.
        rgba = tf.cast(tf.io.decode_png(data, channels=4), tf.uint16)
        colour, alpha = rgba[..., :3], rgba[..., 3:]
        # Without tRNS, decode_png fills the alpha of a grey or palette
        # image of 1, 2 or 4 bits with the largest value of that depth
        # (1, 3, 15), not 255: every pixel is opaque then.
        depth = tf.cast(
            tf.io.decode_raw(_header_prefix(tf, data), tf.uint8)[24], tf.int32
        )
        misfilled = tf.cond(
            depth < 8,
            lambda: tf.logical_not(_has_trns(tf, data)),
            lambda: tf.constant(False),
        )
        alpha = tf.where(misfilled, tf.constant(255, tf.uint16), alpha)
        mixed = (colour * alpha + 255 * (255 - alpha) + 127) // 255
        return tf.cast(mixed, tf.uint8)

    def jpeg():
        return tf.io.decode_jpeg(data, channels=3)

    image = tf.cond(is_png, png, jpeg)
    if expected_size is not None:
        image = tf.ensure_shape(image, [*expected_size, 3])
    return image


def decode_images(image_bytes, expected_size, max_pixels=MAX_IMAGE_PIXELS):
    """`decode_image` over a batch: string [B] -> uint8 [B, H, W, 3], where
    every image must be `expected_size` = (height, width); messages name the
    failing element as image_bytes[i]."""
    import tensorflow as tf

    def decode(element):
        data, index = element
        name = _message(tf, "image_bytes[", index, "]")
        return decode_image(data, expected_size, max_pixels, name)

    indices = tf.range(tf.size(image_bytes, out_type=tf.int64))
    return tf.map_fn(
        decode,
        (image_bytes, indices),
        fn_output_signature=tf.TensorSpec([*expected_size, 3], tf.uint8),
    )


def encode_png(batch):
    """uint8 [B, H, W, C] -> string [B]: each image as the bytes of a PNG."""
    import tensorflow as tf

    return tf.map_fn(
        tf.io.encode_png,
        batch,
        fn_output_signature=tf.TensorSpec([], tf.string),
    )


class BytesServing:
    """Turns a task's tensor serving function into `serving_bytes`.

    The core decodes the images (`decode_images`, at `input_image_size`) and
    PNG-encodes the image the task returns; a task says how to read the
    text (`parse_text`) and what to run (`run`). Every request error is an
    InvalidArgumentError of that call alone: the server keeps serving.
    """

    def input_image_size(self):
        """(height, width) every input image must have."""
        raise NotImplementedError

    def parse_text(self, text):
        """string [B] -> what `run` takes as its text input."""
        raise NotImplementedError

    def run(self, images, parsed_text):
        """(uint8 [B, H, W, 3] image to return as PNG, {name: raw output})."""
        raise NotImplementedError

    def serve_bytes(self, image_bytes, text):
        """The `serving_bytes` function: `png_bytes` and the raw outputs."""
        import tensorflow as tf

        same_batch = tf.debugging.Assert(
            tf.equal(tf.size(image_bytes), tf.size(text)),
            [
                "image_bytes and text must hold one entry per request; "
                "their lengths are",
                tf.size(image_bytes),
                tf.size(text),
            ],
        )
        with tf.control_dependencies([same_batch]):
            image_bytes = tf.identity(image_bytes)
        images_in = decode_images(image_bytes, self.input_image_size())
        picture, raw = self.run(images_in, self.parse_text(text))
        return {"png_bytes": encode_png(picture), **raw}

    def bytes_endpoint(self):
        """The `serving_bytes` Endpoint."""
        return task_lib.Endpoint(
            BYTES_SIGNATURE_NAME, self.serve_bytes, bytes_input_signature()
        )
