"""CoSaL's TensorBoard pictures and its paper Table 2 panel."""

import numpy as np
import tensorflow as tf

from data_builders.cosal import vocabulary
from lbie_tf.cosal import evaluation


def colorize(labels):
    """(B, H, W) colour labels -> (B, H, W, 3) uint8 RGB images."""
    return tf.gather(
        tf.constant(vocabulary.LABEL_RGB, tf.uint8), tf.cast(labels, tf.int32)
    )


def attention_pictures(attention_weights, cell_pixels=8):
    """One picture per step: rows regions, columns the 9 sentences.

    Brightness is |weight| / max |weight| of the region (the released
    attention is raw dot products that may be negative).

    Args:
      attention_weights: (B, R, 9, T).

    Returns:
      A list of T uint8 images (B, R * cell_pixels, 9 * cell_pixels, 3).
    """
    weights = np.abs(np.asarray(attention_weights, np.float32))
    weights = weights / np.maximum(weights.max(axis=2, keepdims=True), 1e-9)
    pictures = []
    for step in range(weights.shape[-1]):
        grey = (255 * weights[..., step]).astype(np.uint8)
        grey = np.repeat(np.repeat(grey, cell_pixels, 1), cell_pixels, 2)
        pictures.append(np.repeat(grey[..., None], 3, axis=-1))
    return pictures


def comparison_markdown(results, paper_iou):
    """The text summary: our numbers beside the paper's Table 2 row."""
    paper = "n/a" if paper_iou is None else f"{paper_iou:.4f}"
    return (
        "| metric | ours | paper Table 2 |\n|---|---|---|\n"
        f"| average IoU, 9 shapes + background | "
        f"{results['iou_shapes']:.4f} | {paper} |\n"
        f"| mean IoU, colour classes (released code) | "
        f"{results['miou_colors']:.4f} | n/a |\n"
    )


def write_summaries(
    writer, model, batch, results, step, paper_iou=None, num_images=4
):
    """Scalars, input / prediction / target images of a fixed test batch,
    one attention picture per fusion step and the Table 2 panel."""
    inputs, targets = batch
    n = num_images
    inputs = {key: value[:n] for key, value in inputs.items()}
    outputs = model(inputs, training=False)
    predictions = evaluation.predicted_labels(outputs)
    with writer.as_default(step=step):
        tf.summary.scalar("iou_shapes", results["iou_shapes"])
        tf.summary.scalar("miou_colors", results["miou_colors"])
        tf.summary.scalar("text_sensitivity", results["text_sensitivity"])
        for step_index, fraction in enumerate(
            results.get("kept_step_fractions", ()), start=1
        ):
            tf.summary.scalar(f"kept_step/{step_index}", fraction)
        tf.summary.image("input", inputs["image"], max_outputs=n)
        tf.summary.image("prediction", colorize(predictions), max_outputs=n)
        tf.summary.image(
            "target", colorize(targets["color_labels"][:n]), max_outputs=n
        )
        if "attention_weights" in outputs:
            pictures = attention_pictures(outputs["attention_weights"])
            for index, picture in enumerate(pictures, start=1):
                tf.summary.image(
                    f"attention/step_{index}", picture, max_outputs=n
                )
        tf.summary.text("paper_table2", comparison_markdown(results, paper_iou))
