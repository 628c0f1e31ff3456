"""CoSaL's SavedModel signatures: in-graph tokenisation, the model, argmax
labels and the coloured image, so a server needs only TensorFlow."""

from data_builders.cosal import vocabulary
from lbie_tf.cosal import editing

SIGNATURE_NAME = "serving_default"
# Punctuation that text_to_sentence_ids also ignores around a sentence.
_EDGE_PATTERN = r"^[\s.!;,]+|[\s.!;,]+$"


def _joined(token):
    return token.replace(" ", "_")


def _multi_word_patterns():
    """Regexes that glue each multi-word token into one word, longest first,
    so that "half fat ellipse" is joined before "fat ellipse" can match."""
    multi_word = sorted(
        (t for t in vocabulary.TOKENS if " " in t), key=len, reverse=True
    )
    return [
        (r"\b" + r"\s+".join(t.split()) + r"\b", _joined(t)) for t in multi_word
    ]


class _Serving:
    """Builds the serving function of one model: in-graph tokenisation, the
    model, argmax labels and the coloured image."""

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
        self.palette = tf.constant(
            (editing.BACKGROUND_RGB, *vocabulary.COLOR_RGB), dtype=tf.uint8
        )
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

    def tokenize(self, sentences):
        """Maps [B, 9] sentence strings to [B, 9, 3] int32 token ids; fails
        with InvalidArgumentError on unknown words or wrong lengths."""
        tf = self.tf
        text = tf.strings.lower(tf.reshape(sentences, [-1]))
        text = tf.strings.regex_replace(text, _EDGE_PATTERN, "")
        for pattern, replacement in self.patterns:
            text = tf.strings.regex_replace(text, pattern, replacement)
        words = tf.strings.split(text)
        ids = self.table.lookup(words.flat_values)
        known_check = tf.debugging.Assert(
            tf.reduce_all(ids >= 0),
            [
                "Unknown CoSaL word(s):",
                tf.boolean_mask(words.flat_values, ids < 0),
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
        labels = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)
        result = {
            "labels": tf.cast(labels, tf.uint8),
            "colored_image": tf.gather(self.palette, labels),
        }
        if "attention_weights" in outputs:
            result["attention_weights"] = tf.cast(
                outputs["attention_weights"], tf.float32
            )
        return result


def endpoints(model):
    """The CoSaL SavedModel signatures of `model` and the resources they use.

    `serving_default` takes `image` (uint8 [B, S, S, 3], black silhouettes
    on white) and `sentences` (string [B, 9], one CoSaL sentence each, e.g.
    "circle is red") and returns `labels` (uint8 [B, S, S]: 0 background,
    colour index + 1), `colored_image` (uint8 [B, S, S, 3]: white
    background, COLOR_RGB per label) and, for models with attention,
    `attention_weights` (float32 [B, regions, 9, T]). Unknown words and
    sentences that are not 3 tokens long fail with InvalidArgumentError.
    """
    import tensorflow as tf

    from lbie_tf.core import task as task_lib

    serving = _Serving(tf, model)
    default = task_lib.Endpoint(
        SIGNATURE_NAME, serving, serving.input_signature()
    )
    return [default], [serving.table]
