"""CoSaL's whole-split evaluation: both IoUs and the two diagnostics."""

import time

import numpy as np
import tensorflow as tf

from lbie_tf.cosal import input_pipeline, models
from lbie_tf.cosal.metrics import ColorMeanIoU, ShapeAverageIoU


def predicted_labels(outputs):
    """Per-pixel colour label: argmax of the model's "logits" output."""
    return tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)


# How many test images the text-sensitivity check reads (a second forward
# pass each).
TEXT_SENSITIVITY_IMAGES = 1000


def evaluate_model(model, dataset, num_classes, max_batches=None):
    """Both CoSaL IoUs of `model` over every example of `dataset`.

    Args:
      model: a CoSaL keras.Model (the contract in models).
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
      output was the one kept, read from the model's "stop_step" output:
      over every region of the paper model or every pixel of the original
      model) and kept_step_unit ("region" or "pixel").
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
        # One-step models emit no "stop_step".
        stops = {k: v for k, v in outputs.items() if k == "stop_step"}
        return tf.shape(labels), stops

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
    kept_counts = kept_step_unit = None
    shape_pixels = changed_pixels = 0
    for index, (inputs, targets) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        if num_examples < TEXT_SENSITIVITY_IMAGES:
            shape, changed = text_step(inputs, targets)
            shape_pixels += int(shape)
            changed_pixels += int(changed)
        labels_shape, stops = step(inputs, targets)
        num_examples += int(labels_shape[0])
        steps = models.kept_steps(stops)
        if steps is not None:
            # The original family's mixture picks a step per pixel, the
            # paper's gate one per region of the 6 x 6 fused map.
            per_pixel = (
                list(steps.shape[1:]) == labels_shape.numpy()[1:].tolist()
            )
            kept_step_unit = "pixel" if per_pixel else "region"
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
        results["kept_step_unit"] = kept_step_unit
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
        "cell": config.cell,
        "family": model.family,
        "T": int(model.num_steps),
        "attention": bool(model.attention),
        "num_direct": int(
            input_pipeline.builder_config(config.data).num_direct
        ),
        "paper_iou": config.paper_iou,
        "data": config.data.name,
    }
