"""ReferIt's TensorBoard panels: predicted masks over test images, and the
paper's Table 3 beside ours."""

import numpy as np
import tensorflow as tf

from lbie_tf.referit import input_pipeline, table3

# The colour and opacity of a mask laid over its image.
OVERLAY_RGB = (255, 0, 0)
OVERLAY_ALPHA = 0.5


def overlay(image, mask):
    """uint8 [..., H, W, 3] with the bool [..., H, W] mask laid over it in
    OVERLAY_RGB at OVERLAY_ALPHA."""
    image = np.asarray(image, dtype=np.float32)
    colour = np.asarray(OVERLAY_RGB, dtype=np.float32)
    alpha = np.asarray(mask, dtype=np.float32)[..., None] * OVERLAY_ALPHA
    mixed = image * (1.0 - alpha) + colour * alpha
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def write_summaries(
    writer, model, batch, results, step, model_name, num_images
):
    """Writes, at `step`: "test/predictions", the first `num_images` test
    images (letterboxed, as the model sees them) with the predicted mask in
    red, and "test/table3", ours beside the paper's Table 3."""
    inputs, _ = batch
    images = {key: value[:num_images] for key, value in inputs.items()}
    logits = model(images, training=False)["logits"].numpy()[..., 0]
    pixels = np.clip(
        images["image"].numpy() + np.asarray(input_pipeline.RGB_MEAN), 0, 255
    )
    with writer.as_default():
        tf.summary.image(
            "test/predictions",
            overlay(pixels, logits > 0),
            step=step,
            max_outputs=num_images,
        )
        tf.summary.text(
            "test/table3",
            table3.comparison_markdown(model_name, results),
            step=step,
        )
    writer.flush()
