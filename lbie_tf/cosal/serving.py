"""CoSaL's SavedModel signatures: in-graph tokenisation, the model, argmax
labels and the coloured image, so a server needs only TensorFlow."""

import functools
import sys

from data_builders.cosal import vocabulary
from lbie_tf.core import serving as core_serving
from lbie_tf.cosal import editing, evaluation

SIGNATURE_NAME = "serving_default"
BYTES_SIGNATURE_NAME = core_serving.BYTES_SIGNATURE_NAME
# The graph follows vocabulary.text_to_sentence_ids step by step (one rule,
# two implementations, tested to agree): the text splits into sentences at
# runs of these characters, and pieces of only white space are dropped.
_SENTENCE_SEPARATORS = "[.;\n]+"
# sentence_to_ids strips white space, then these characters, from the ends.
_EDGE_CHARACTERS = "[.!;,]"
# Multi-word tokens are glued with a character that cannot survive the white
# space normalisation (str.isspace is true for it), so no user text can
# spell a glued token ("half_fat_ellipse" stays an unknown word, as in
# Python).
_GLUE = "\x1f"


@functools.cache
def _white_space_class():
    """An RE2 character class of exactly the characters Python's str.strip()
    and the vocabulary's `\\s` treat as white space (RE2's own `\\s` is
    ASCII only)."""
    spaces = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    return "[" + "".join(f"\\x{{{c:x}}}" for c in spaces) + "]"


def _joined(token):
    return token.replace(" ", _GLUE)


def _multi_word_patterns():
    """Regexes that glue each multi-word token into one word, longest first,
    so that "half fat ellipse" is joined before "fat ellipse" can match (the
    order of the vocabulary's alternation). They run after white space is
    normalised to single spaces."""
    multi_word = sorted(
        (t for t in vocabulary.TOKENS if " " in t), key=len, reverse=True
    )
    return [(r"\b" + t + r"\b", _joined(t)) for t in multi_word]


class _Serving(core_serving.BytesServing):
    """Builds the serving functions of one model: in-graph tokenisation, the
    model, argmax labels and the coloured image; `serving_bytes` adds the
    core's image decoding and PNG encoding."""

    def __init__(self, tf, model):
        self.tf = tf
        self.model = model
        self.image_size = editing.model_image_size(model)
        keys = [_joined(t) for t in vocabulary.TOKENS]
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys),
                tf.constant(list(range(len(keys))), dtype=tf.int32),
            ),
            default_value=-1,
        )
        self.patterns = _multi_word_patterns()
        self.white_space = _white_space_class()
        self.palette = tf.constant(vocabulary.LABEL_RGB, dtype=tf.uint8)
        self.known = ", ".join(vocabulary.TOKENS)

    def input_signature(self):
        tf = self.tf
        size = self.image_size
        return [
            tf.TensorSpec([None, size, size, 3], tf.uint8, name="image"),
            tf.TensorSpec(
                [None, vocabulary.NUM_SENTENCES], tf.string, name="sentences"
            ),
        ]

    def split_text(self, text):
        """Maps [B] descriptions to [B, 9] sentence strings as
        vocabulary.text_to_sentence_ids splits them (at '.', ';' or new
        lines); fails with InvalidArgumentError unless each has exactly 9."""
        tf = self.tf
        pieces = tf.strings.split(
            tf.strings.regex_replace(text, _SENTENCE_SEPARATORS, "."), sep="."
        )
        blank = tf.strings.regex_full_match(
            pieces.flat_values, self.white_space + "*"
        )
        sentences = tf.ragged.boolean_mask(
            pieces, pieces.with_flat_values(tf.logical_not(blank))
        )
        count_check = tf.debugging.Assert(
            tf.reduce_all(sentences.row_lengths() == vocabulary.NUM_SENTENCES),
            [
                f"A CoSaL description has exactly {vocabulary.NUM_SENTENCES} "
                "sentences, separated by '.', ';' or new lines; sentences "
                "per text:",
                sentences.row_lengths(),
            ],
            summarize=20,
        )
        with tf.control_dependencies([count_check]):
            flat = tf.identity(sentences.flat_values)
        return tf.reshape(flat, [-1, vocabulary.NUM_SENTENCES])

    def tokenize(self, sentences):
        """Maps [B, 9] sentence strings to [B, 9, 3] int32 token ids as
        vocabulary.sentence_to_ids reads each; fails with
        InvalidArgumentError on unknown words or wrong lengths."""
        tf = self.tf
        space = self.white_space
        text = tf.strings.lower(tf.reshape(sentences, [-1]), encoding="utf-8")
        # strip(), then strip(".!;,"): white space inside the punctuation
        # stays and must then be a gap between tokens.
        text = tf.strings.regex_replace(
            text, f"^{space}*{_EDGE_CHARACTERS}*", ""
        )
        text = tf.strings.regex_replace(
            text, f"{_EDGE_CHARACTERS}*{space}*$", ""
        )
        text = tf.strings.regex_replace(text, f"{space}+", " ")
        text = tf.strings.regex_replace(text, "^ | $", "")
        for pattern, replacement in self.patterns:
            text = tf.strings.regex_replace(text, pattern, replacement)
        words = tf.strings.split(text, sep=" ")
        # An empty sentence splits into one empty word; it has no token.
        words = tf.ragged.boolean_mask(
            words,
            words.with_flat_values(tf.strings.length(words.flat_values) > 0),
        )
        ids = self.table.lookup(words.flat_values)
        unknown = tf.boolean_mask(words.flat_values, ids < 0)
        known_check = tf.debugging.Assert(
            tf.reduce_all(ids >= 0),
            [
                "Unknown CoSaL word(s):",
                tf.strings.regex_replace(unknown, _GLUE, " "),
                f"CoSaL knows these tokens: {self.known}.",
            ],
            summarize=20,
        )
        with tf.control_dependencies([known_check]):
            length_check = tf.debugging.Assert(
                tf.reduce_all(
                    words.row_lengths() == vocabulary.SENTENCE_LENGTH
                ),
                [
                    "Each CoSaL sentence has exactly "
                    f"{vocabulary.SENTENCE_LENGTH} tokens ('<shape> is "
                    "<colour>' or '<colour> <relation> <shape>'); token "
                    "counts per sentence:",
                    words.row_lengths(),
                ],
                summarize=vocabulary.NUM_SENTENCES,
            )
        with tf.control_dependencies([known_check, length_check]):
            ids = tf.identity(ids)
        shape = [
            tf.shape(sentences)[0],
            vocabulary.NUM_SENTENCES,
            vocabulary.SENTENCE_LENGTH,
        ]
        return tf.reshape(ids, shape)

    def __call__(self, image, sentences):
        tf = self.tf
        outputs = self.model(
            {"image": image, "sentences": self.tokenize(sentences)},
            training=False,
        )
        labels = evaluation.predicted_labels(outputs)
        result = {
            "labels": tf.cast(labels, tf.uint8),
            "colored_image": tf.gather(self.palette, labels),
        }
        if "attention_weights" in outputs:
            result["attention_weights"] = tf.cast(
                outputs["attention_weights"], tf.float32
            )
        return result

    # The three hooks of core_serving.BytesServing.
    def input_image_size(self):
        return (self.image_size, self.image_size)

    def parse_text(self, text):
        return self.split_text(text)

    def run(self, images, sentences):
        result = self(images, sentences)
        picture = result.pop("colored_image")
        return picture, result


def endpoints(model):
    """The CoSaL SavedModel signatures of `model` and the resources they use.

    `serving_default` takes `image` (uint8 [B, S, S, 3], black silhouettes
    on white) and `sentences` (string [B, 9], one CoSaL sentence each, e.g.
    "circle is red") and returns `labels` (uint8 [B, S, S]: 0 background,
    colour index + 1), `colored_image` (uint8 [B, S, S, 3]: white
    background, COLOR_RGB per label) and, for models with attention,
    `attention_weights` (float32 [B, regions, 9, T]). Unknown words and
    sentences that are not 3 tokens long fail with InvalidArgumentError.

    `serving_bytes` takes `image_bytes` (string [B]: PNG or JPEG files of
    S x S pixels in any mode; alpha is composited on white, DEVIATIONS.md
    "Edit CLI input") and `text` (string [B]: the nine sentences in one
    string, split at '.', ';' or new lines as `experiments.edit` splits
    them) and returns `png_bytes` (string [B]: `colored_image` as a PNG),
    `labels` and, with attention, `attention_weights`. An image that is not
    a PNG or JPEG, is damaged, has more than core MAX_IMAGE_PIXELS pixels
    (checked from its header, before decoding) or is not S x S fails that
    call with InvalidArgumentError, as does a text that is not 9 sentences.
    """
    import tensorflow as tf

    from lbie_tf.core import task as task_lib

    serving = _Serving(tf, model)
    default = task_lib.Endpoint(
        SIGNATURE_NAME, serving, serving.input_signature()
    )
    return [default, serving.bytes_endpoint()], [serving.table]
