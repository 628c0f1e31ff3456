"""Exports a CoSaL model as a .keras file and a self-contained SavedModel.

The SavedModel's `serving_default` signature takes the image as uint8 and the
nine sentences as strings; it tokenises them inside the graph, so a server
needs only TensorFlow (no project code) to colour images.
"""

import dataclasses
import os
import shutil
import tempfile

from data_builders.cosal import vocabulary
from lbie_tf import cli_errors, edit_lib

SAVED_MODEL_DIR_NAME = "saved_model"
SIGNATURE_NAME = "serving_default"
# What a previous export leaves in its directory; only a directory holding
# nothing else may be replaced, so an export never deletes unrelated files.
_EXPORT_ENTRIES = frozenset({edit_lib.MODEL_FILE_NAME, SAVED_MODEL_DIR_NAME})
# Punctuation that text_to_sentence_ids also ignores around a sentence.
_EDGE_PATTERN = r"^[\s.!;,]+|[\s.!;,]+$"


@dataclasses.dataclass(frozen=True)
class ExportPaths:
    """Where `export_model` put each artefact."""

    export_dir: str
    keras_path: str
    saved_model_dir: str


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


def _check_export_dir(export_dir):
    if os.path.exists(export_dir):
        if not os.path.isdir(export_dir):
            raise cli_errors.OutputError(
                f"export directory {export_dir!r} is a file; pass a directory "
                "that does not exist yet or holds an earlier export."
            )
        extra = sorted(set(os.listdir(export_dir)) - _EXPORT_ENTRIES)
        if extra:
            raise cli_errors.OutputError(
                f"export directory {export_dir!r} holds other files "
                f"({', '.join(extra[:5])}); pass a directory that does not "
                "exist yet, is empty, or holds an earlier export."
            )


class _Serving:
    """Builds the serving function of one model: in-graph tokenisation, the
    model, argmax labels and the coloured image."""

    def __init__(self, tf, model):
        self.tf = tf
        self.model = model
        self.image_size = edit_lib.model_image_size(model)
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
            (edit_lib.BACKGROUND_RGB, *vocabulary.COLOR_RGB), dtype=tf.uint8
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


def _write_saved_model(tf, keras, model, directory):
    serving = _Serving(tf, model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(serving.table)
    archive.add_endpoint(
        name=SIGNATURE_NAME,
        fn=serving,
        input_signature=serving.input_signature(),
    )
    archive.write_out(directory, verbose=False)


def export_model(model_path_or_model, export_dir):
    """Writes `<export_dir>/model.keras` and `<export_dir>/saved_model/`.

    The SavedModel's `serving_default` signature takes `image` (uint8
    [B, S, S, 3], black silhouettes on white) and `sentences` (string [B, 9],
    one CoSaL sentence each, e.g. "circle is red") and returns `labels`
    (uint8 [B, S, S]: 0 background, colour index + 1), `colored_image` (uint8
    [B, S, S, 3]: white background, COLOR_RGB per label) and, for models with
    attention, `attention_weights` (float32 [B, regions, 9, T]). Unknown words
    and sentences that are not 3 tokens long fail with InvalidArgumentError.

    Everything is written to a temporary directory beside `export_dir` and
    renamed into place at the end, so a failed export leaves no partial
    directory. An existing `export_dir` is replaced only if it is empty or
    holds nothing but an earlier export.

    Args:
      model_path_or_model: a `keras.Model`, or a `.keras` file, a training
        workdir or an export directory.
      export_dir: the directory to write.

    Returns:
      An `ExportPaths`.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    _check_export_dir(export_dir)
    if isinstance(model_path_or_model, (str, os.PathLike)):
        model = edit_lib.load_model(model_path_or_model)
    else:
        model = model_path_or_model
    tf, keras = cli_errors.import_tensorflow_quietly()
    if not isinstance(model, keras.Model):
        raise ValueError(
            "model_path_or_model must be a keras.Model or a path; received "
            f"{type(model_path_or_model).__name__}."
        )

    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(
        prefix=f".{os.path.basename(export_dir)}.", suffix=".tmp", dir=parent
    )
    retired = None
    try:
        model.save(os.path.join(staging, edit_lib.MODEL_FILE_NAME))
        _write_saved_model(
            tf, keras, model, os.path.join(staging, SAVED_MODEL_DIR_NAME)
        )
        if os.path.exists(export_dir):
            retired = staging + ".old"
            os.rename(export_dir, retired)
        os.rename(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not os.path.exists(export_dir):
            os.rename(retired, export_dir)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
    return ExportPaths(
        export_dir=export_dir,
        keras_path=os.path.join(export_dir, edit_lib.MODEL_FILE_NAME),
        saved_model_dir=os.path.join(export_dir, SAVED_MODEL_DIR_NAME),
    )
