"""Evaluates a CoSaL model on the whole test split and writes eval.json."""

import json
import os
import time

import keras
import ml_collections
import numpy as np
import tensorflow as tf

# Importing cosal_models registers every custom layer the models use, so
# that load_model finds them.
from lbie_tf import cli_errors, cosal_input, cosal_losses, cosal_models  # noqa: F401
from lbie_tf.cosal_metrics import ColorMeanIoU, ShapeAverageIoU


def write_json(path, value):
    """Writes JSON atomically: a temporary file renamed over `path`."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temporary, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    tf.io.gfile.rename(temporary, path, overwrite=True)


def read_config(workdir):
    """The resolved config a training run wrote into its workdir."""
    path = os.path.join(workdir, "config.json")
    if not tf.io.gfile.exists(path):
        raise cli_errors.ModelFileError(
            f"No training config at {path}; --workdir must be a directory "
            "written by `python -m experiments.train`."
        )
    try:
        with tf.io.gfile.GFile(path) as f:
            return ml_collections.ConfigDict(json.load(f))
    except json.JSONDecodeError as error:
        raise cli_errors.ModelFileError(
            f"Corrupt training config {path} ({error}); rerun training or "
            "restore the file."
        ) from None


def predicted_labels(outputs):
    """Per-pixel colour label: argmax of the model's "logits" output."""
    return tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)


# How many test images the text-sensitivity check reads (a second forward
# pass each).
TEXT_SENSITIVITY_IMAGES = 1000
# The outputs that say which step a T > 1 model kept (cosal_models).
_STOP_OUTPUTS = ("stop_step", "stop_probabilities")


def evaluate_model(model, dataset, num_classes, max_batches=None):
    """Both CoSaL IoUs of `model` over every example of `dataset`.

    Args:
      model: a CoSaL keras.Model (the contract in cosal_models).
      dataset: (inputs, targets) batches as made by `cosal_input`, the
        whole test split (the metrics sum over every batch, they never
        average per-batch values).
      num_classes: colour classes including background.
      max_batches: stop after this many batches (tests only).

    Returns:
      A dict: miou_colors, iou_shapes, iou_per_color (class 0 background),
      iou_per_shape (index 0 background, k shape id k - 1), num_examples,
      eval_s; text_sensitivity: over the first TEXT_SENSITIVITY_IMAGES
      images, the fraction of shape pixels whose predicted colour changes
      when every image is given the next image's sentences (0 for a model
      that ignores the text, about 5/6 for a perfect one with 6 colours);
      for T > 1 models also kept_step_fractions (how often each step's
      output was the one kept, over every region of the paper model or
      every pixel of the original model) and kept_step_unit.
    """
    color_iou = ColorMeanIoU(num_classes)
    shape_iou = ShapeAverageIoU()

    @tf.function
    def step(inputs, targets):
        outputs = model(inputs, training=False)
        labels = predicted_labels(outputs)
        color_iou.update_state(targets["color_labels"], labels)
        shape_iou.update_state(
            targets["color_labels"], targets["shape_labels"], labels
        )
        stops = {k: outputs[k] for k in _STOP_OUTPUTS if k in outputs}
        return tf.shape(labels)[0], stops

    @tf.function
    def text_step(inputs, targets):
        """Shape pixels, and those whose colour follows other sentences."""
        labels = predicted_labels(model(inputs, training=False))
        swapped = dict(inputs)
        swapped["sentences"] = tf.roll(inputs["sentences"], 1, axis=0)
        other = predicted_labels(model(swapped, training=False))
        shape = targets["color_labels"] > 0
        changed = tf.logical_and(shape, tf.not_equal(labels, other))
        return (
            tf.reduce_sum(tf.cast(shape, tf.int64)),
            tf.reduce_sum(tf.cast(changed, tf.int64)),
        )

    start = time.perf_counter()
    num_examples = 0
    kept_counts = None
    shape_pixels = changed_pixels = 0
    for index, (inputs, targets) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        if num_examples < TEXT_SENSITIVITY_IMAGES:
            shape, changed = text_step(inputs, targets)
            shape_pixels += int(shape)
            changed_pixels += int(changed)
        batch_size, stops = step(inputs, targets)
        num_examples += int(batch_size)
        steps = cosal_models.kept_steps(model, stops)
        if steps is not None:
            counts = np.bincount(steps.reshape(-1), minlength=_num_steps(model))
            kept_counts = (
                counts if kept_counts is None else kept_counts + counts
            )
    color_ious, _ = color_iou.class_ious()
    results = {
        "miou_colors": float(color_iou.result()),
        "iou_shapes": float(shape_iou.result()),
        "iou_per_color": [float(x) for x in np.asarray(color_ious)],
        "iou_per_shape": [float(x) for x in np.asarray(shape_iou.class_ious())],
        "num_examples": num_examples,
        "text_sensitivity": changed_pixels / max(shape_pixels, 1),
    }
    if kept_counts is not None:
        results["kept_step_fractions"] = [
            float(x) for x in kept_counts / kept_counts.sum()
        ]
        results["kept_step_unit"] = (
            "pixel" if "stop_step" in stops else "region"
        )
    results["eval_s"] = time.perf_counter() - start
    return results


def _num_steps(model):
    try:
        return int(model.get_layer("fusion").num_steps)
    except ValueError:
        return 1


def describe_run(config):
    """The Table 2 coordinates of a run, stored beside its numbers."""
    model = config.model
    return {
        "cell": config.get("cell", None),
        "family": model.family,
        "T": int(model.num_steps),
        "attention": bool(model.attention),
        "num_direct": int(cosal_input.builder_config(config.data).num_direct),
        "paper_iou": config.get("paper_iou", None),
        "data": config.data.name,
    }


def evaluate_workdir(workdir, data_dir=None, batch_size=None):
    """Evaluates `<workdir>/model.keras` on the test split of its config.

    Writes `<workdir>/eval.json` and returns its content.
    """
    config = read_config(workdir)
    if data_dir is not None:
        config.data.data_dir = data_dir
    model_path = os.path.join(workdir, "model.keras")
    if not tf.io.gfile.exists(model_path):
        raise cli_errors.ModelFileError(
            f"No trained model at {model_path}; train first with "
            "`python -m experiments.train --workdir=...`."
        )
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except (OSError, ValueError) as error:
        raise cli_errors.ModelFileError(
            f"Corrupt model file {model_path} ({cli_errors.one_line(error)})"
            "; retrain or restore it."
        ) from None
    builder = cosal_input.prepare(cosal_input.get_builder(config.data))
    dataset = cosal_input.make_dataset(
        builder,
        "test",
        batch_size or config.eval.batch_size,
        training=False,
        cache=False,
    )
    results = evaluate_model(model, dataset, config.model.num_classes)
    results.update(describe_run(config))
    results["split"] = "test"
    write_json(os.path.join(workdir, "eval.json"), results)
    return results
