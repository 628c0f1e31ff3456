r"""Measures the text path of an original-family T = 1 attention model.

  python -m experiments.diagnostics.probe_text_path \
      --model=runs/original_b1/original_t1_attn_d8_b1 \
      [--config=experiments/configs/cosal.py:original_t1_attn_d8] \
      [--num_images=200]

Prints JSON, over the first `--num_images` test images of the config's
data: mean absolute values of the image features the fusion reads (h), the
sentence memory (m) and the attended text; how much of the attended text
changes when every image gets the next image's sentences (0: the memory
carries no description, only sentence positions); the spread of the
attention weights over sentences and which sentence each region attends to
most; the mean reset and update gates of the fusion cell. The released
model's attention has no softmax (DEVIATIONS.md point 4), which is why
these sizes matter (results/original_long/README.md).
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

# The released encoder's last layer: the 3 x 3 map the fusion reads.
IMAGE_FEATURES_LAYER = "encoder4_3_relu"


def _mean_abs(x):
    import tensorflow as tf

    return float(tf.reduce_mean(tf.abs(x)))


def _check_model(model):
    from lbie_tf.core import errors

    names = {layer.name for layer in model.layers}
    if not {IMAGE_FEATURES_LAYER, "fusion", "text_encoder"} <= names:
        raise errors.UsageError(
            "--model must be an original-family model with attention "
            f"(layers {IMAGE_FEATURES_LAYER!r}, 'fusion', 'text_encoder'); "
            f"received a model with layers {sorted(names)}."
        )
    fusion = model.get_layer("fusion")
    if fusion.num_steps != 1 or fusion.kernel_size != 1:
        raise errors.UsageError(
            "--model must have one fusion step with a 1x1 cell; received "
            f"num_steps={fusion.num_steps}, kernel_size={fusion.kernel_size}."
        )


def probe_text_path(model, data_config, num_images):
    """The text-path numbers of `model` on the first `num_images` test
    images of `data_config` (the dict the module docstring describes)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from lbie_tf.cosal import input_pipeline

    _check_model(model)
    builder = input_pipeline.prepare(input_pipeline.get_builder(data_config))
    dataset = input_pipeline.make_dataset(
        builder, "test", num_images, training=False, num_examples=num_images
    )
    inputs, _ = next(iter(dataset))
    image_features = keras.Model(
        model.inputs, model.get_layer(IMAGE_FEATURES_LAYER).output
    )(inputs)
    fusion = model.get_layer("fusion")
    cell = fusion.cell

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
        tf.matmul(image_features, cell.recurrent_kernel[0, 0])
        + tf.matmul(attended, cell.input_kernel[0, 0])
        + cell.gate_bias
    )
    units = cell.filters
    top = np.argmax(np.asarray(weights), axis=-1).ravel()
    return {
        "images": int(image_features.shape[0]),
        "mean_abs_image_features": _mean_abs(image_features),
        "mean_abs_memory": _mean_abs(memory),
        "mean_abs_attended": _mean_abs(attended),
        "attended_change_with_other_sentences": (
            _mean_abs(attended - swapped) / max(_mean_abs(attended), 1e-12)
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


def define_flags():
    """Defines the command's flags; only when it runs, so that tests can
    import this module beside other commands that define --config."""
    model = flags.DEFINE_string(
        "model",
        None,
        "An original-family T = 1 attention model: a .keras file, a "
        "training workdir or an export.",
        required=True,
    )
    config = config_flags.DEFINE_config_file(
        "config",
        "experiments/configs/cosal.py:original_t1_attn_d8",
        "The config whose data (data.name, data.data_dir) the probe reads.",
        lock_config=True,
    )
    num_images = flags.DEFINE_integer(
        "num_images", 200, "How many test images to probe."
    )
    return model, config, num_images


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from experiments import cli
    from lbie_tf.cosal import editing

    model = cli.exit_on_user_error(editing.load_model, _MODEL.value)
    result = cli.exit_on_user_error(
        probe_text_path, model, _CONFIG.value.data, _NUM_IMAGES.value
    )
    print(json.dumps({"model": _MODEL.value, **result}, indent=2))


if __name__ == "__main__":
    _MODEL, _CONFIG, _NUM_IMAGES = define_flags()
    app.run(main)
