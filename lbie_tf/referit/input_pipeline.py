"""ReferIt's input rules: Hu et al.'s 512 x 512 letterbox, its inverse for
predictions, and the one tokenizer that tf.data and serving share."""

import re

import numpy as np
import tensorflow as tf

from lbie_tf.core import errors

# The side of the square model input (Hu et al. 2016, section 4; the paper,
# section 4.2).
IMAGE_SIZE = 512
# The RGB mean that Hu et al. subtract from the 0..255 pixels (no / 255).
RGB_MEAN = (123.68, 116.779, 103.939)
# Token ids per expression: longer ones keep their first 20 tokens, shorter
# ones are padded on the left.
MAX_TOKENS = 20
SPECIAL_TOKENS = ("<pad>", "<go>", "<eos>", "<unk>")
PAD_ID = 0
UNK_ID = 3
# The code points for which Python's str.isspace() is true: what str.strip()
# removes. The graph tokenizer uses the same set, so that both agree on which
# pieces are white space only (tests check this list against Python).
WHITE_SPACE_CODE_POINTS = (
    *range(9, 14),
    *range(28, 33),
    133,
    160,
    5760,
    *range(8192, 8203),
    8232,
    8233,
    8239,
    8287,
    12288,
)
# Python 2's \W, which Hu et al.'s tokenizer ran under: anything but ASCII
# letters, digits and "_" (a non-ASCII letter is a separator too).
_SPLIT = re.compile(r"(\W+)", re.ASCII)
_EMPTY_TEXT = (
    "the referring expression is empty or only white space; it must name "
    "the object to segment"
)


# --- Resizing, as skimage.transform.resize of 2016 did it -----------------


def _taps(in_size, out_size, first, count):
    """The two input neighbours of output pixels first .. first + count - 1
    when `in_size` pixels are resized to `out_size`, and their weights.

    Output pixel i samples input coordinate (i + 0.5) * in / out - 0.5, as
    skimage 0.12's `resize` mapped pixel centres. The coordinate is computed
    as the exact fraction ((2i + 1) in - out) / (2 out), so a sample that
    falls on a pixel centre gives its neighbour a weight of exactly 0 (float
    arithmetic could leave 1e-16 there, which would turn a pixel on in the
    "any non-zero value" rule of `prediction_to_original`).

    Returns:
      (lower, upper, lower_weight, upper_weight): int64 indices into the
      input padded with one zero pixel on each side, and float64 weights
      1 - f and f, f the coordinate's fractional part.
    """
    in_size = tf.cast(in_size, tf.int64)
    out_size = tf.cast(out_size, tf.int64)
    index = tf.range(count, dtype=tf.int64) + tf.cast(first, tf.int64)
    numerator = (2 * index + 1) * in_size - out_size
    denominator = 2 * out_size
    lower = tf.math.floordiv(numerator, denominator)
    fraction = tf.cast(numerator - lower * denominator, tf.float64) / tf.cast(
        denominator, tf.float64
    )
    # Coordinates lie in (-0.5, in - 0.5), so lower >= -1 and upper <= in:
    # the zero padding is the 'constant' mode's cval = 0.
    return lower + 1, lower + 2, 1.0 - fraction, fraction


def _resample(image, out_height, out_width, top, left, height, width):
    """Rows top .. top + height - 1 and columns left .. left + width - 1 of
    `image` (float64 [H, W, C]) resized to out_height x out_width.

    Bilinear (order 1) between the 4 neighbours, and a neighbour outside the
    image counts as 0: skimage's mode='constant', cval=0, which blends the
    border pixels of an enlarged image with black (tf.image.resize clamps to
    the edge pixel instead). No anti-aliasing: a shrunk image is sampled at
    the pixel centres only. Columns are interpolated first, then rows, the
    order of skimage's bilinear_interpolation, so the float arithmetic is
    the same.
    """
    padded = tf.pad(image, [[1, 1], [1, 1], [0, 0]])
    in_height = tf.shape(image)[0]
    in_width = tf.shape(image)[1]
    c0, c1, w_c0, w_c1 = _taps(in_width, out_width, left, width)
    columns = w_c0[None, :, None] * tf.gather(padded, c0, axis=1) + w_c1[
        None, :, None
    ] * tf.gather(padded, c1, axis=1)
    r0, r1, w_r0, w_r1 = _taps(in_height, out_height, top, height)
    return w_r0[:, None, None] * tf.gather(columns, r0, axis=0) + w_r1[
        :, None, None
    ] * tf.gather(columns, r1, axis=0)


def _as_channels(image):
    """`image` as float64 [H, W, C] and whether it had no channel axis."""
    image = tf.convert_to_tensor(image)
    rank = image.shape.rank
    if rank not in (2, 3):
        raise ValueError(
            f"Expected an image of rank 2 (H, W) or 3 (H, W, C); received "
            f"shape {image.shape}."
        )
    if image.dtype == tf.bool:
        image = tf.cast(image, tf.uint8)
    image = tf.cast(image, tf.float64)
    if rank == 2:
        return image[:, :, None], True
    return image, False


def resize_bilinear(image, height, width):
    """Resizes `image` to height x width as Hu et al.'s skimage did.

    That is skimage 0.12's `resize(image, (height, width), order=1,
    mode='constant', cval=0)` with the range preserved: bilinear sampling
    at output pixel centres (i + 0.5) * in / out - 0.5, neighbours outside
    the image read as 0, and no anti-aliasing. Today's skimage defaults
    (anti_aliasing=True when shrinking, mode='reflect') give other values:
    blurred before shrinking and no dark border when enlarging, which makes
    the thresholded masks of small images visibly larger.

    Args:
      image: [H, W] or [H, W, C], any real or bool dtype.
      height, width: the output size (ints or int scalar tensors, >= 1).

    Returns:
      float64 [height, width] or [height, width, C].
    """
    pixels, no_channels = _as_channels(image)
    resized = _resample(pixels, height, width, 0, 0, height, width)
    return resized[:, :, 0] if no_channels else resized


# --- The letterbox and its inverse (Hu et al. 2016) ------------------------


def letterbox_geometry(height, width, image_size=IMAGE_SIZE):
    """Where an image of height x width goes in the 512 x 512 input (or the
    `image_size` square of a smaller model: every 512 below becomes S).

    scale = min(512 / H, 512 / W) in float64; the resized size is
    (round(H scale), round(W scale)) with round half to even (NumPy's
    np.round, which Hu et al. used, and tf.round agree), at least 1 pixel;
    the offsets are floor((512 - size) / 2).

    Returns:
      int32 scalars (resized_height, resized_width, top, left).
    """
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    side = tf.constant(image_size, tf.float64)
    scale = tf.minimum(side / height, side / width)

    def resized(length):
        # A 1 x 1024 image would round to 0 columns (0.5 rounds to even);
        # the original could not process it, here it keeps 1 pixel
        # (DEVIATIONS.md, "ReferIt letterbox").
        return tf.maximum(tf.cast(tf.round(length * scale), tf.int32), 1)

    resized_height = resized(height)
    resized_width = resized(width)
    top = (image_size - resized_height) // 2
    left = (image_size - resized_width) // 2
    return resized_height, resized_width, top, left


def _letterbox(pixels, image_size):
    """float64 [H, W, C] -> the resized pixels centred in a zero S x S
    canvas (float64 [S, S, C]), S = `image_size`."""
    shape = tf.shape(pixels)
    resized_height, resized_width, top, left = letterbox_geometry(
        shape[0], shape[1], image_size
    )
    resized = resize_bilinear(pixels, resized_height, resized_width)
    return resized, tf.stack(
        [
            [top, image_size - resized_height - top],
            [left, image_size - resized_width - left],
            [0, 0],
        ]
    )


def letterbox_image(image, image_size=IMAGE_SIZE):
    """An RGB image as Hu et al.'s model sees it: float32 [512, 512, 3]
    (or [S, S, 3] for `image_size` S, a small model's input).

    Resized by `letterbox_geometry` with `resize_bilinear`, rounded to
    integers (Hu et al. converted the resized image back to uint8 with
    skimage's img_as_ubyte, which rounds; here half to even, theirs by
    float noise at exact halves), centred in a zero canvas, and the RGB
    mean subtracted, so the border is -RGB_MEAN.

    Args:
      image: uint8 (or integer-valued) [H, W, 3], or [H, W, 1] for a grey
        image, which becomes 3 equal channels. Usable inside tf.data with
        dynamic H and W.
    """
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            "Expected an image of shape (H, W, 3) or (H, W, 1); received "
            f"{image.shape}."
        )
    if image.shape[-1] == 1:
        image = tf.tile(image, [1, 1, 3])
    resized, padding = _letterbox(tf.cast(image, tf.float64), image_size)
    resized = tf.clip_by_value(tf.round(resized), 0.0, 255.0)
    canvas = tf.pad(resized, padding)
    canvas = tf.cast(canvas, tf.float32) - tf.constant(RGB_MEAN, tf.float32)
    return tf.ensure_shape(canvas, [image_size, image_size, 3])


def letterbox_mask(mask, image_size=IMAGE_SIZE):
    """A ground-truth mask in the 512 x 512 frame: bool [512, 512] (or
    [S, S] for `image_size` S).

    The mask (non-zero = object) is resized like the image, and every
    pixel with a non-zero interpolated value is object, as Hu et al.'s
    training labels (resize_and_pad(mask) > 0); the canvas is background.

    Args:
      mask: [H, W], bool or numeric.
    """
    # A cast to bool is `!= 0`.
    mask = tf.cast(tf.convert_to_tensor(mask), tf.bool)
    if mask.shape.rank != 2:
        raise ValueError(
            f"Expected a mask of shape (H, W); received {mask.shape}."
        )
    resized, padding = _letterbox(
        tf.cast(mask, tf.float64)[:, :, None], image_size
    )
    canvas = tf.pad(resized > 0, padding, constant_values=False)
    return tf.ensure_shape(canvas[:, :, 0], [image_size, image_size])


def prediction_to_original(pred_512, height, width, image_size=IMAGE_SIZE):
    """A 512 x 512 prediction at the image's original size, as Hu et al.
    evaluated it: bool [height, width] (a small model's S x S prediction:
    every 512 below becomes S = `image_size`).

    Their resize_and_crop: scale = max(H / 512, W / 512), the 512 x 512 map
    resized (by `resize_bilinear`) to round(512 scale) squared, which is
    max(H, W) pixels a side, and its centred H x W window, offsets
    floor((size - H) / 2) and floor((size - W) / 2), kept. Any non-zero
    interpolated value is foreground. Only the kept window is computed.

    Args:
      pred_512: [512, 512], bool or numeric; non-zero = foreground (pass
        `logits > 0`).
      height, width: the original image size (ints or int scalar tensors).
    """
    pred = tf.cast(tf.convert_to_tensor(pred_512), tf.bool)
    if pred.shape.rank != 2:
        raise ValueError(
            f"Expected a prediction of shape (512, 512); received {pred.shape}."
        )
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    side = tf.constant(image_size, tf.float64)
    scale = tf.maximum(
        tf.cast(height, tf.float64) / side, tf.cast(width, tf.float64) / side
    )
    size = tf.cast(tf.round(side * scale), tf.int32)
    top = (size - height) // 2
    left = (size - width) // 2
    resampled = _resample(
        tf.cast(pred, tf.float64)[:, :, None],
        size,
        size,
        top,
        left,
        height,
        width,
    )
    return resampled[:, :, 0] > 0


# --- Tokenisation (Hu et al. 2016's text_processing) -----------------------


def _check_special_tokens(vocabulary, source):
    for token_id, token in enumerate(SPECIAL_TOKENS):
        if vocabulary.get(token) != token_id:
            raise errors.UserError(
                f"{source}: token id {token_id} must be {token!r} (the "
                f"vocabulary starts with {' '.join(SPECIAL_TOKENS)}); it maps "
                f"{token!r} to {vocabulary.get(token)!r}."
            )


def read_vocabulary(path):
    """Reads a vocabulary file (vocabulary_referit.txt): {token: id}.

    One token per line, id = line number (from 0), each line stripped of
    white space and a repeated token keeping its last line, as Hu et al.'s
    load_vocab_dict_from_file read it. Read through tf.io.gfile.

    Raises:
      UserError: the file is missing or not UTF-8, or ids 0..3 are not
        <pad> <go> <eos> <unk>.
    """
    try:
        with tf.io.gfile.GFile(path, "rb") as file:
            text = file.read().decode("utf-8")
    except tf.errors.NotFoundError:
        raise errors.UserError(
            f"vocabulary file {path} does not exist."
        ) from None
    except UnicodeDecodeError as error:
        raise errors.UserError(
            f"vocabulary file {path} is not UTF-8 text ({error})."
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocabulary = {line.strip(): token_id for token_id, line in enumerate(lines)}
    _check_special_tokens(vocabulary, f"vocabulary file {path}")
    return vocabulary


def tokenize(text):
    """The tokens of a referring expression, by Hu et al.'s rule.

    The text is stripped and split on the regex (\\W+) with the separators
    kept, \\W being ASCII-only as in the Python 2 original (so "café" is
    "caf" and "é"); pieces that are only white space are dropped, the others
    are kept unstripped (", " stays one token, which is then <unk>); each is
    lowercased (Python 3's Unicode case mapping; Python 2's differed only
    for a few non-ASCII letters, such as a word-final sigma); a final "."
    token is dropped. "." on its own therefore has no token at all.

    Raises:
      TextError: the text is empty or only white space.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise errors.TextError(
                f"the referring expression is not UTF-8 text ({error})."
            ) from None
    if not isinstance(text, str):
        raise errors.TextError(
            f"the referring expression must be a string; received "
            f"{type(text).__name__}."
        )
    stripped = text.strip()
    if not stripped:
        raise errors.TextError(_EMPTY_TEXT)
    words = [piece.lower() for piece in _SPLIT.split(stripped) if piece.strip()]
    if words[-1] == ".":
        words.pop()
    return words


def encode(text, vocabulary):
    """A referring expression as Hu et al.'s model reads it: int32 [20].

    `tokenize`, then token ids ({token: id} from `read_vocabulary`; a word
    not in it is <unk>, id 3), the first 20 kept and the rest dropped, so a
    10,000-character text costs 20 tokens; shorter ones LEFT-padded with
    <pad> (id 0). An expression of unknown words only is all <unk> after
    the padding: a result, not an error; "." is all <pad>.

    Raises:
      TextError: the text is empty or only white space.
    """
    ids = [vocabulary.get(word, UNK_ID) for word in tokenize(text)]
    ids = ids[:MAX_TOKENS]
    encoded = np.full(MAX_TOKENS, PAD_ID, dtype=np.int32)
    if ids:
        encoded[MAX_TOKENS - len(ids) :] = ids
    return encoded


def _is_word_character(code_points):
    """ASCII letters, digits and "_": Python 2's \\w."""
    return (
        ((code_points >= ord("0")) & (code_points <= ord("9")))
        | ((code_points >= ord("A")) & (code_points <= ord("Z")))
        | ((code_points >= ord("a")) & (code_points <= ord("z")))
        | tf.equal(code_points, ord("_"))
    )


def _lower(words):
    """Unicode lowercasing of a string tensor that keeps NUL characters.

    tf.strings.lower with encoding='utf-8' ends a string at its first NUL,
    so the pieces between NULs are lowercased one by one and joined again;
    a NUL is not a cased letter, so the final-sigma rule, the only one that
    looks at neighbours, sees the same context either way.
    """
    parts = tf.strings.split(words, sep="\0")
    lowered = tf.strings.lower(parts, encoding="utf-8")
    return tf.strings.reduce_join(lowered, axis=-1, separator="\0")


class TextEncoder(tf.Module):
    """`encode` as TensorFlow ops, for tf.data and an exported model.

    Called on a string tensor [B] of UTF-8 texts it returns int32 [B, 20],
    the ids `encode` gives for each. It works on code points, without
    regular expressions: RE2's \\W and white space differ from Python's, and
    a marker inserted around separators could occur in the text itself.
    Each text is decoded, stripped, cut into maximal runs of word and of
    non-word characters (the pieces of Python's re.split), the pieces of
    white space only dropped, the rest lowercased (ICU's Unicode case
    mapping, which is Python 3's str.lower but for letters added to Unicode
    after TensorFlow's ICU), a final "." dropped, looked up, cut to 20 and
    left-padded.

    A tf.Module, so that an ExportArchive or tf.saved_model.save tracks the
    lookup table.

    Raises (when run):
      InvalidArgumentError: a text is empty or only white space (the
        message names the batch positions), or is not valid UTF-8.
    """

    def __init__(self, vocabulary, name=None):
        """`vocabulary`: {token: id} as `read_vocabulary` returns it."""
        super().__init__(name=name)
        _check_special_tokens(vocabulary, "TextEncoder vocabulary")
        tokens = list(vocabulary)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(tokens, dtype=tf.string),
                tf.constant([vocabulary[t] for t in tokens], dtype=tf.int32),
            ),
            default_value=UNK_ID,
        )
        self.white_space = tf.constant(WHITE_SPACE_CODE_POINTS, tf.int32)

    def __call__(self, texts):
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        texts = tf.ensure_shape(texts, [None])
        num_texts = tf.shape(texts, out_type=tf.int64)[0]
        code_points = tf.strings.unicode_decode(texts, "UTF-8", errors="strict")
        flat = code_points.flat_values
        row = code_points.value_rowids()
        position = tf.range(
            tf.size(flat, out_type=tf.int64), dtype=tf.int64
        ) - tf.gather(code_points.row_starts(), row)
        is_space = tf.reduce_any(
            tf.equal(flat[:, None], self.white_space[None, :]), axis=1
        )

        # strip(): keep the code points from the first to the last that is
        # not white space.
        first = tf.math.unsorted_segment_min(
            tf.where(is_space, tf.constant(tf.int64.max, tf.int64), position),
            row,
            num_texts,
        )
        last = tf.math.unsorted_segment_max(
            tf.where(is_space, tf.constant(-1, tf.int64), position),
            row,
            num_texts,
        )
        blank = last < 0
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(blank)),
            [
                _EMPTY_TEXT + "; batch positions:",
                tf.where(blank)[:, 0],
            ],
            summarize=20,
        )
        with tf.control_dependencies([check]):
            first = tf.identity(first)
        keep = (position >= tf.gather(first, row)) & (
            position <= tf.gather(last, row)
        )

        # re.split(r"(\W+)"): a piece starts at a text's first kept code
        # point and wherever word and non-word characters alternate.
        is_word = _is_word_character(flat)
        previous_is_word = tf.concat([[False], is_word], axis=0)[:-1]
        starts = keep & (
            tf.equal(position, tf.gather(first, row))
            | tf.not_equal(is_word, previous_is_word)
        )
        kept_code_points = tf.boolean_mask(flat, keep)
        kept_starts = tf.boolean_mask(starts, keep)
        piece = tf.cumsum(tf.cast(kept_starts, tf.int64)) - 1
        num_pieces = tf.reduce_sum(tf.cast(kept_starts, tf.int64))
        pieces = tf.strings.unicode_encode(
            tf.RaggedTensor.from_value_rowids(
                kept_code_points, piece, nrows=num_pieces
            ),
            "UTF-8",
        )
        piece_row = tf.boolean_mask(tf.boolean_mask(row, keep), kept_starts)
        has_text = (
            tf.math.segment_max(
                tf.cast(
                    tf.logical_not(tf.boolean_mask(is_space, keep)), tf.int32
                ),
                piece,
            )
            > 0
        )
        words = _lower(tf.boolean_mask(pieces, has_text))
        words = tf.RaggedTensor.from_value_rowids(
            words, tf.boolean_mask(piece_row, has_text), nrows=num_texts
        )

        # Drop a final ".", then keep the first MAX_TOKENS words.
        lengths = words.row_lengths()
        last_word = tf.gather(
            words.flat_values, tf.maximum(words.row_limits() - 1, 0)
        )
        ends_with_dot = (lengths > 0) & tf.equal(last_word, ".")
        lengths = tf.minimum(
            lengths - tf.cast(ends_with_dot, tf.int64), MAX_TOKENS
        )
        word_row = words.value_rowids()
        word_position = tf.range(
            tf.size(words.flat_values, out_type=tf.int64), dtype=tf.int64
        ) - tf.gather(words.row_starts(), word_row)
        kept = word_position < tf.gather(lengths, word_row)
        ids = self.table.lookup(tf.boolean_mask(words.flat_values, kept))
        kept_row = tf.boolean_mask(word_row, kept)
        # Left padding: word k of a text with n words goes to column
        # MAX_TOKENS - n + k.
        column = (
            MAX_TOKENS
            - tf.gather(lengths, kept_row)
            + tf.boolean_mask(word_position, kept)
        )
        return tf.scatter_nd(
            tf.stack([kept_row, column], axis=1),
            ids,
            tf.stack([num_texts, tf.constant(MAX_TOKENS, tf.int64)]),
        )
