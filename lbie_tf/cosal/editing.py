"""Colours a CoSaL silhouette image as a text says, with a trained model.

Everything that checks the user's input (text, image, model path, output
paths) runs before TensorFlow is imported, so bad input fails in well under a
second; TensorFlow and Keras are imported only to load and run the model.
"""

import dataclasses
import os

import numpy as np

from data_builders.cosal import vocabulary
from lbie_tf.core import artifacts, errors, images, runtime
from lbie_tf.cosal import explain_figure

DEFAULT_IMAGE_SIZE = 48


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """A checked `.keras` archive: its path and the input size it expects."""

    path: str
    image_size: int | None
    output_names: tuple


@dataclasses.dataclass(frozen=True)
class EditResult:
    """What the model made of one image: per-pixel labels (0 background, 1..C
    colour index + 1), the coloured image, the attention weights
    (regions, 9, T) or None for models without attention, and the 0-based
    step whose output each region (paper model) or pixel (original model)
    kept, or None for one-step models."""

    labels: np.ndarray
    colored_image: np.ndarray
    attention_weights: np.ndarray | None
    stop_steps: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class EditArtifacts:
    """Where `edit` wrote its pictures, and the colour it chose per cell."""

    out_path: str
    explain_path: str | None
    cell_colors: tuple


def _find_input_size(node, name):
    """Returns the spatial size of the InputLayer called `name` in a Keras
    config tree, or None."""
    if isinstance(node, dict):
        config = node.get("config")
        if (
            node.get("class_name") == "InputLayer"
            and isinstance(config, dict)
            and config.get("name") == name
        ):
            shape = config.get("batch_shape") or config.get("batch_input_shape")
            if shape and len(shape) == 4 and isinstance(shape[1], int):
                return shape[1]
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        size = _find_input_size(child, name)
        if size is not None:
            return size
    return None


def inspect_model_file(path):
    """Checks that `path` is a readable `.keras` archive without loading it.

    Catches missing, truncated and non-Keras files before TensorFlow starts.

    Returns:
      A `ModelFile`; `image_size` is None when the config does not say.

    Raises:
      ModelFileError: naming the problem.
    """
    config = artifacts.read_model_archive_config(path)
    outputs = ()
    if isinstance(config, dict) and isinstance(config.get("config"), dict):
        output_layers = config["config"].get("output_layers")
        if isinstance(output_layers, dict):
            outputs = tuple(sorted(output_layers))
    return ModelFile(
        path=path,
        image_size=_find_input_size(config, "image"),
        output_names=outputs,
    )


def parse_description(text):
    """Tokenises a CoSaL description of 9 sentences of 3 tokens.

    Returns:
      (ids, sentences): int32 (9, 3) token ids and the 9 normalised sentences.

    Raises:
      TextError: for unknown words or the wrong sentence count or length.
    """
    try:
        ids = vocabulary.text_to_sentence_ids(text)
    except ValueError as error:
        raise errors.TextError(str(error)) from None
    sentences = tuple(vocabulary.ids_to_sentence(row) for row in ids)
    return np.asarray(ids, dtype=np.int32), sentences


def read_silhouette_image(path, image_size=DEFAULT_IMAGE_SIZE):
    """Reads an image of silhouettes (black shapes on white) as 8-bit RGB.

    Any mode Pillow reads is converted (DEVIATIONS.md, "Edit CLI input"):
    grey, 1-bit and palette images to RGB, 16-bit grey by its high byte,
    and alpha (RGBA, LA, a transparent palette entry) composited on white,
    as the exported `serving_bytes` signature does. The header is checked
    before any pixel is decoded: an image above core MAX_IMAGE_PIXELS
    (a decompression bomb) or of another size than image_size x image_size
    is refused.

    Returns:
      uint8 array (image_size, image_size, 3).

    Raises:
      ImageError: if the file is missing, not an image, damaged, too large
        or not image_size x image_size pixels.
    """
    accepted = (
        f"expected a {image_size}x{image_size} image (PNG or JPEG) of black "
        "shapes on white"
    )
    return images.read_image_file(path, accepted, size=(image_size, image_size))


def colorize_labels(labels, palette=vocabulary.COLOR_RGB):
    """Draws a label map: 0 white, label k in palette[k - 1].

    Args:
      labels: integer array (..., H, W) of labels in 0..len(palette).
      palette: RGB triples, one per colour (default: CoSaL's COLOR_RGB).

    Returns:
      uint8 array (..., H, W, 3).
    """
    labels = np.asarray(labels)
    lookup = np.asarray((vocabulary.BACKGROUND_RGB, *palette), np.uint8)
    if labels.size and (labels.min() < 0 or labels.max() >= len(lookup)):
        raise ValueError(
            f"labels must lie in 0..{len(lookup) - 1} (0 background, then one "
            f"per palette colour); received values in "
            f"{labels.min()}..{labels.max()}."
        )
    return lookup[labels.astype(np.int64)]


def cell_colors(silhouette, labels, grid_size=3):
    """Names the colour predicted for each cell's shape (majority vote over
    the cell's dark silhouette pixels), row-major; '-' where a cell has no
    shape pixels."""
    silhouette = np.asarray(silhouette)
    labels = np.asarray(labels)
    cell = labels.shape[0] // grid_size
    shape_pixels = silhouette.max(axis=-1) < 128
    names = []
    for row in range(grid_size):
        for col in range(grid_size):
            window = np.s_[
                row * cell : (row + 1) * cell, col * cell : (col + 1) * cell
            ]
            votes = labels[window][shape_pixels[window]]
            votes = votes[votes > 0]
            if votes.size == 0:
                names.append("-")
                continue
            winner = int(np.bincount(votes).argmax())
            names.append(vocabulary.COLOR_NAMES[winner - 1])
    return tuple(names)


def load_model(path):
    """Loads a CoSaL Keras model from a `.keras` file, a workdir or an export.

    Raises:
      ModelFileError: if the path is missing or the file is not a model.
    """
    # Importing the model module registers the custom layers that
    # keras.saving.load_model needs to rebuild the model; TensorFlow is
    # imported first without its start-up noise.
    runtime.import_tensorflow_quietly()
    from lbie_tf.cosal import models  # noqa: F401

    return artifacts.load_model(path, what="a CoSaL model")


def model_image_size(model):
    """Returns the image size a CoSaL Keras model takes (48 if unknown)."""
    for tensor in getattr(model, "inputs", None) or ():
        name = getattr(tensor, "name", "")
        if name.split(":")[0] == "image" and len(tensor.shape) == 4:
            if tensor.shape[1] is not None:
                return int(tensor.shape[1])
    return DEFAULT_IMAGE_SIZE


def run_model(model, image, sentence_ids):
    """Runs a CoSaL model on one image and its 9 x 3 token ids.

    Returns:
      An `EditResult`.
    """
    from keras import ops

    from lbie_tf.cosal import evaluation, models

    outputs = model(
        {
            "image": np.asarray(image, dtype=np.uint8)[None],
            "sentences": np.asarray(sentence_ids, dtype=np.int32)[None],
        },
        training=False,
    )
    labels = ops.convert_to_numpy(evaluation.predicted_labels(outputs))
    labels = labels[0].astype(np.uint8)
    attention = outputs.get("attention_weights")
    if attention is not None:
        attention = ops.convert_to_numpy(attention)[0]
    stop_steps = models.kept_steps(outputs)
    return EditResult(
        labels=labels,
        colored_image=colorize_labels(labels),
        attention_weights=attention,
        stop_steps=None if stop_steps is None else stop_steps[0],
    )


def edit(
    model_path,
    image_path,
    text,
    out_path,
    explain_path=None,
    scale=1,
    explain_scale=8,
):
    """Colours `image_path` as `text` says and writes the result to
    `out_path` (and the attention picture to `explain_path`).

    All inputs are checked before the model is loaded; nothing is written
    unless every step succeeds, and each PNG is written atomically.

    Returns:
      An `EditArtifacts`.

    Raises:
      UserError: (a subclass) naming what is wrong with an input.
    """
    for name, value in (("scale", scale), ("explain_scale", explain_scale)):
        if not images.is_scale(value):
            raise errors.UsageError(
                f"--{name} must be an integer in 1..{images.MAX_SCALE}; "
                f"received {value!r}."
            )
    artifacts.check_output_path(out_path, "--out")
    if explain_path is not None:
        artifacts.check_output_path(explain_path, "--explain")
        if os.path.abspath(explain_path) == os.path.abspath(out_path):
            raise errors.UsageError(
                f"--explain and --out name the same file {out_path!r}; "
                "pass two different .png files."
            )
    sentence_ids, sentences = parse_description(text)
    model_file = inspect_model_file(artifacts.resolve_model_path(model_path))
    image_size = model_file.image_size or DEFAULT_IMAGE_SIZE
    image = read_silhouette_image(image_path, image_size)
    if (
        explain_path is not None
        and model_file.output_names
        and "attention_weights" not in model_file.output_names
    ):
        raise errors.UsageError(
            f"--explain needs a model with attention; {model_file.path!r} has "
            f"none (its outputs: {', '.join(model_file.output_names)})."
        )

    model = load_model(model_file.path)
    if model_image_size(model) != image_size:
        image = read_silhouette_image(image_path, model_image_size(model))
    result = run_model(model, image, sentence_ids)
    picture = images.upscale(result.colored_image, scale)
    explanation = None
    if explain_path is not None:
        if result.attention_weights is None:
            raise errors.UsageError(
                f"--explain needs a model with attention; {model_file.path!r} "
                "outputs no attention_weights."
            )
        explanation = explain_figure.render_explanation(
            result.colored_image,
            result.attention_weights,
            sentences,
            scale=explain_scale,
            stop_steps=None
            if result.stop_steps is None
            else explain_figure.cell_stop_steps(result.stop_steps),
        )
    images.write_png(out_path, picture)
    if explanation is not None:
        images.write_png(explain_path, explanation)
    return EditArtifacts(
        out_path=out_path,
        explain_path=explain_path,
        cell_colors=cell_colors(image, result.labels),
    )


def write_example(directory, num_direct=8, index=0, seed=0):
    """Writes a CoSaL test-split example to try `edit` on.

    Files: `in.png` (the silhouettes, the model's input), `target.png` (the
    true colours) and `text.txt` (the nine sentences, one per line).

    Returns:
      (image_path, text_path, target_path).
    """
    from data_builders.cosal import generator

    try:
        rng = generator.example_rng(seed, "test", index)
        example = generator.generate_example(rng, num_direct)
    except ValueError as error:
        raise errors.UsageError(str(error)) from None
    directory = os.fspath(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise errors.OutputError(
            f"cannot create directory {directory!r} ({errors.one_line(error)})."
        ) from None
    image_path = os.path.join(directory, "in.png")
    target_path = os.path.join(directory, "target.png")
    text_path = os.path.join(directory, "text.txt")
    images.write_png(image_path, example["image"])
    images.write_png(target_path, example["target"])
    artifacts.write_text(text_path, "\n".join(example["sentence_text"]) + "\n")
    return image_path, text_path, target_path
