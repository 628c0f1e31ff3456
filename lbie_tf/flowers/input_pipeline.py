"""The flowers task's parsers: one caption tokenizer for tf.data and the
SavedModel, and images turned into the generator's normalised L input and
ab target (paper section 4.3; the released code's 384 -> 256 crop)."""

import collections
import re

import tensorflow as tf

from lbie_tf.flowers import lab

PAD = "<pad>"
UNKNOWN = "<unk>"
PAD_ID = 0
UNKNOWN_ID = 1
# A word is a run of ASCII letters and digits after ASCII lowercasing;
# everything else (punctuation, spaces, non-ASCII letters) separates
# words. tf.strings.lower lowercases ASCII only, so Python does the same.
_WORD = re.compile(r"[a-z0-9]+")
_SEPARATORS = "[^a-z0-9]+"
_ASCII_LOWER = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
)


def caption_words(caption):
    """The words of `caption` as the graph tokenizer reads them."""
    return _WORD.findall(caption.translate(_ASCII_LOWER))


def build_vocabulary(captions, min_count=1):
    """The token list of the training captions: <pad> (id 0), <unk> (id 1),
    then every word seen at least `min_count` times, most frequent first
    (ties in alphabetical order, so the list is a function of the
    captions alone)."""
    counts = collections.Counter(
        word for caption in captions for word in caption_words(caption)
    )
    words = sorted(
        (word for word, count in counts.items() if count >= min_count),
        key=lambda word: (-counts[word], word),
    )
    return [PAD, UNKNOWN, *words]


class CaptionEncoder:
    """Captions (string [B]) -> token ids (int32 [B, max_tokens]): ASCII
    lowercase, words as `caption_words` splits them, unknown words
    <unk>, the first `max_tokens` words, right-padded with <pad> (the
    BiLSTM masks it). A caption without a single word (empty, only
    spaces or punctuation) fails with InvalidArgumentError; a caption of
    unknown words only reads as <unk> tokens (documented fallback: the
    model then colours as it would for an uninformative caption).
    """

    def __init__(self, tokens, max_tokens):
        if tokens[:2] != [PAD, UNKNOWN]:
            raise ValueError(
                "A flowers vocabulary starts with <pad>, <unk>; received "
                f"{tokens[:2]!r}."
            )
        self.max_tokens = max_tokens
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(tokens[2:]),
                tf.range(2, len(tokens), dtype=tf.int64),
            ),
            default_value=UNKNOWN_ID,
        )

    def __call__(self, captions):
        words = tf.strings.split(
            tf.strings.strip(
                tf.strings.regex_replace(
                    tf.strings.lower(captions), _SEPARATORS, " "
                )
            )
        )
        counts = words.row_lengths()
        check = tf.debugging.assert_positive(
            counts,
            message=(
                "A caption must contain at least one word (letters or "
                "digits); received an empty one"
            ),
        )
        with tf.control_dependencies([check]):
            words = words[:, : self.max_tokens]
        ids = tf.ragged.map_flat_values(self.table.lookup, words)
        padded = ids.to_tensor(
            default_value=PAD_ID, shape=[None, self.max_tokens]
        )
        return tf.cast(padded, tf.int32)


def to_model_inputs(rgb):
    """float RGB [..., H, W, 3] in [0, 1] -> (lightness [..., H, W, 1],
    ab [..., H, W, 2]), both normalised (L / 50 - 1, ab / 110)."""
    lab_pixels = lab.rgb_to_lab(rgb)
    lightness = lab.normalize_lightness(lab_pixels[..., :1])
    return lightness, lab.normalize_ab(lab_pixels[..., 1:])


def to_rgb(lightness, ab):
    """The inverse of `to_model_inputs`: float RGB in [0, 1]."""
    return lab.lab_to_rgb(
        tf.concat(
            [lab.denormalize_lightness(lightness), lab.denormalize_ab(ab)],
            axis=-1,
        )
    )


def resize_area(image, size):
    """uint8 or float [H, W, 3] -> float32 [size, size, 3] in [0, 1],
    area-resized ignoring the aspect ratio (the released code)."""
    image = tf.image.convert_image_dtype(image, tf.float32)
    resized = tf.image.resize(image, [size, size], method="area")
    return tf.clip_by_value(resized, 0.0, 1.0)


def augment(image, crop_size, seed):
    """The released training augmentation on a loaded [S, S, 3] image: a
    random crop of `crop_size` and a random left-right flip, the same for
    input and target (they are one image here), drawn from the stateless
    `seed` (int64 [2]) so that a resumed run crops as an uninterrupted
    one."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    crop = tf.image.stateless_random_crop(
        image, [crop_size, crop_size, 3], seed=seeds[0]
    )
    return tf.image.stateless_random_flip_left_right(crop, seed=seeds[1])


def pick_caption(captions, seed):
    """One caption of an image's list, drawn from the stateless `seed`."""
    index = tf.random.stateless_uniform(
        [], seed=seed, maxval=tf.size(captions), dtype=tf.int32
    )
    return captions[index]
