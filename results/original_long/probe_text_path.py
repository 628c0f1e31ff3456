"""Measures the text path of an original-family T = 1 attention model.

Prints JSON: mean absolute values of the image features the fusion reads
(h), the sentence memory (m) and the attended text; how much of the attended
text changes when every image gets the next image's sentences (0: the
memory carries no description, only sentence positions); the spread of the
attention weights over sentences and which sentence each region attends to
most; the mean reset and update gates of the fusion cell.

  python results/original_long/probe_text_path.py \
      runs/original_b1/original_t1_attn_d8_b1/checkpoints/ckpt-0003.keras
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from experiments.configs import cosal  # noqa: E402
from lbie_tf.cosal import (
    input_pipeline,  # noqa: E402, F401
    )

NUM_IMAGES = 200


def mean_abs(x):
    return float(tf.reduce_mean(tf.abs(x)))


def main(path, cell="original_t1_attn_d8"):
    model = keras.saving.load_model(path, compile=False)
    config = cosal.get_config(cell)
    builder = input_pipeline.get_builder(config.data)
    dataset = input_pipeline.make_dataset(
        builder, "test", NUM_IMAGES, training=False, num_examples=NUM_IMAGES
    )
    inputs, _ = next(iter(dataset))
    image_features = keras.Model(
        model.inputs, model.get_layer("encoder4_3_relu").output
    )(inputs)
    fusion = model.get_layer("fusion")
    cell_layer = fusion.cell

    def attend(sentences):
        memory = model.get_layer("text_encoder")(sentences)
        keys = fusion.attention.project_memory(memory)
        attended, weights = fusion.attention.attend(
            image_features, keys, memory
        )
        return memory, attended, weights

    memory, attended, weights = attend(inputs["sentences"])
    _, swapped, _ = attend(tf.roll(inputs["sentences"], 1, axis=0))
    # The cell is 1x1 (kernel_size 1): its convolutions are matmuls.
    gates = tf.sigmoid(
        tf.matmul(image_features, cell_layer.recurrent_kernel[0, 0])
        + tf.matmul(attended, cell_layer.input_kernel[0, 0])
        + cell_layer.gate_bias
    )
    units = cell_layer.filters
    top = np.argmax(weights.numpy(), axis=-1).ravel()
    result = {
        "model": path,
        "images": NUM_IMAGES,
        "mean_abs_image_features": mean_abs(image_features),
        "mean_abs_memory": mean_abs(memory),
        "mean_abs_attended": mean_abs(attended),
        "attended_change_with_other_sentences": (
            mean_abs(attended - swapped) / max(mean_abs(attended), 1e-12)
        ),
        "attention_weight_std_over_sentences": float(
            tf.reduce_mean(tf.math.reduce_std(weights, axis=-1))
        ),
        "most_attended_sentence_histogram": np.bincount(
            top, minlength=weights.shape[-1]
        ).tolist(),
        "mean_update_gate": float(tf.reduce_mean(gates[..., :units])),
        "mean_reset_gate": float(tf.reduce_mean(gates[..., units:])),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:])
