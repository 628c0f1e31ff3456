r"""Measures whether a colorization model's text attention binds each shape
to the words naming its colour, on the isoluminant CoSaL source.

  python -m experiments.diagnostics.attention_binding \
      --model=runs/colorization_cosal/lbie \
      [--config=experiments/configs/flowers_cosal.py:lbie] \
      [--num_images=1000]

`--model` is a flowers GAN with text attention (the "lbie" config
argument): a `.keras` file, or a training workdir (its model.keras, or
while it trains the newest backup/step-*.keras). The config's data fields
name the test images and the vocabulary, so they must be the ones the
model was trained with; the images go through the generator in batches of
`eval.batch_size`, since its batch norm uses batch statistics at inference
too.

Prints JSON, over the first `--num_images` test images: for every (image,
palette colour) with pixels of that colour in the label map (downsampled
to the attention's resolution by taking every k-th pixel) and with the
colour's word (the last word of its name: "green" for "light green") in
the caption, the last fusion step's attention of those pixels, summed over
the tokens naming the colour and averaged over the pixels
(`shape_colour_groups` groups). `mass_on_true_colour_words_over_uniform_*`
divides it by what uniform attention over the caption's words would put
there; `mass_on_any_colour_word_mean` is the mass on every colour word;
`share_of_colour_word_mass_on_true_colour_mean` the part of that on the
true colour, against `same_share_if_colour_words_were_uniform_mean` if the
colour words were attended evenly (results/colorization_cosal_diagnostics/
README.md).
"""

import contextlib
import copy
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

TASK = "flowers"
SOURCE = "cosal_isoluminant"
ATTENTION_OUTPUT = "attention_weights"
TEXT_ENCODER_LAYER = "text_encoder"


def check_arguments(config, num_images):
    """Raises UsageError unless `config` is a flowers config on the
    isoluminant CoSaL source and `num_images` is at least 1."""
    from lbie_tf.core import errors

    task = config.get("task")
    source = config.data.get("source") if "data" in config else None
    if task != TASK or source != SOURCE:
        raise errors.UsageError(
            f"--config must be a {TASK} config on the isoluminant CoSaL "
            f"source (data.source={SOURCE!r}, e.g. "
            "experiments/configs/flowers_cosal.py:lbie); received "
            f"task={task!r}, data.source={source!r}."
        )
    if isinstance(num_images, bool) or not isinstance(num_images, int):
        raise errors.UsageError(
            f"--num_images must be an integer; received {num_images!r}."
        )
    if num_images < 1:
        raise errors.UsageError(
            f"--num_images must be at least 1; received {num_images}."
        )


def model_file(path):
    """The `.keras` file of `path`: the file itself, a workdir's
    model.keras or, before training has written it, the workdir's newest
    backup (what a run in progress has).

    Raises:
      ModelFileError: for a directory with neither.
    """
    from lbie_tf.core import artifacts, callbacks, errors, train_lib

    path = os.fspath(path)
    if not os.path.isdir(path):
        return path
    final = os.path.join(path, artifacts.MODEL_FILE_NAME)
    if os.path.isfile(final):
        return final
    backup_dir = os.path.join(path, train_lib.BACKUP_DIR_NAME)
    _, backup = callbacks.latest_backup(backup_dir)
    if backup is None:
        raise errors.ModelFileError(
            f"directory {path!r} has no {artifacts.MODEL_FILE_NAME} and no "
            f"{train_lib.BACKUP_DIR_NAME}/step-*.keras; pass a .keras file "
            "or a training workdir."
        )
    return backup


def _text_encoders(model):
    """The layers named TEXT_ENCODER_LAYER of `model` and the models
    nested in it."""
    import keras

    found = []
    for layer in model.layers:
        if layer.name == TEXT_ENCODER_LAYER:
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(_text_encoders(layer))
    return found


def _check_model(model, vocabulary_size):
    import keras

    from lbie_tf.core import errors

    generator = getattr(model, "generator", None)
    if not isinstance(generator, keras.Model):
        raise errors.UsageError(
            f"--model must be a {TASK} colorization GAN (with a generator); "
            f"received a {type(model).__name__}."
        )
    outputs = generator.output
    if not isinstance(outputs, dict) or ATTENTION_OUTPUT not in outputs:
        raise errors.UsageError(
            "--model has no text attention (its generator outputs "
            f"{sorted(outputs) if isinstance(outputs, dict) else outputs}, "
            f"no {ATTENTION_OUTPUT!r}: the no_text baseline?); pass a model "
            "trained with the lbie config argument."
        )
    for encoder in _text_encoders(generator):
        if encoder.vocabulary_size != vocabulary_size:
            raise errors.UsageError(
                f"--model reads {encoder.vocabulary_size} token ids, but the "
                f"config's vocabulary has {vocabulary_size} words; pass the "
                "--config (data fields) the model was trained with."
            )
    return generator


def color_word_ids(tokens):
    """Palette colour c -> the id of its word in `tokens` (None when the
    training captions never name it)."""
    from data_builders.cosal import vocabulary as cosal_vocabulary

    ids = {word: index for index, word in enumerate(tokens)}
    return [ids.get(name.split()[-1]) for name in cosal_vocabulary.COLOR_NAMES]


def binding_groups(attention_weights, tokens, color_labels, color_ids):
    """The groups of one batch: a (mass over uniform, mass on any colour
    word, share on the true colour, share if uniform) row per (image,
    colour) with the colour's pixels and the colour's word.

    Args:
      attention_weights: (B, side * side, L) attention of the regions on
        the tokens (one fusion step).
      tokens: (B, L) token ids, 0 = padding.
      color_labels: (B, S, S) label maps, c + 1 for palette colour c.
      color_ids: `color_word_ids` of the vocabulary.

    Returns:
      A list of 4-tuples of floats.
    """
    import numpy as np

    batch, regions, _ = attention_weights.shape
    side = int(round(regions**0.5))
    step = color_labels.shape[1] // side
    small = color_labels[:, ::step, ::step][:, :side, :side]
    small = small.reshape(batch, regions)
    named = [index for index in color_ids if index is not None]
    real = tokens > 0
    groups = []
    for b in range(batch):
        any_color = np.isin(tokens[b], named)
        for color, word in enumerate(color_ids):
            pixels = small[b] == color + 1
            if word is None or not pixels.any():
                continue
            target = tokens[b] == word
            if not target.any():
                continue
            attention = attention_weights[b][pixels]
            mass = attention[:, target].sum(axis=1).mean()
            uniform = target.sum() / real[b].sum()
            any_mass = attention[:, any_color].sum(axis=1).mean()
            groups.append(
                (
                    float(mass / uniform),
                    float(any_mass),
                    float(mass / any_mass),
                    float(target.sum() / any_color.sum()),
                )
            )
    return groups


def _mean(values, reduce="mean"):
    import numpy as np

    if not values:
        return None
    return float(np.median(values) if reduce == "median" else np.mean(values))


def attention_binding(model, config, num_images):
    """The binding numbers of `model` (a loaded flowers GAN) on the first
    `num_images` test images of `config`'s data (the dict the module
    docstring describes, with `images` and `attention_resolution`; the
    means are None when no group was found)."""
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    check_arguments(config, num_images)
    config = copy.deepcopy(config)
    config.data.test_examples = num_images
    task = task_lib.build_task(config)
    vocabulary = task.vocabulary()
    generator = _check_model(model, len(vocabulary))
    color_ids = color_word_ids(vocabulary)
    dataset = task.build_inputs(
        "test", training=False, batch_size=task.config.eval.batch_size
    )
    groups, images, side = [], 0, None
    for inputs, targets in dataset:
        outputs = generator(inputs, training=False)
        # The last fusion step's attention: (B, side * side, L).
        attention = outputs[ATTENTION_OUTPUT].numpy()[..., -1]
        side = int(round(attention.shape[1] ** 0.5))
        images += attention.shape[0]
        groups += binding_groups(
            attention,
            inputs["tokens"].numpy(),
            targets["color_labels"].numpy(),
            color_ids,
        )
    ratios, any_masses, shares, chance_shares = (
        [group[index] for group in groups] for index in range(4)
    )
    return {
        "images": images,
        "shape_colour_groups": len(groups),
        "mass_on_true_colour_words_over_uniform_mean": _mean(ratios),
        "mass_on_true_colour_words_over_uniform_median": _mean(
            ratios, "median"
        ),
        "mass_on_any_colour_word_mean": _mean(any_masses),
        "attention_resolution": side,
        # Of the mass on colour words, the share on the true colour's
        # words, against that share if the colour words were attended
        # uniformly.
        "share_of_colour_word_mass_on_true_colour_mean": _mean(shares),
        "same_share_if_colour_words_were_uniform_mean": _mean(chance_shares),
    }


def load_model(path, config):
    """The flowers GAN `model_file(path)` names, loaded with the project's
    one error translation; returns (the file, the model)."""
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    path = model_file(path)
    return path, task_lib.build_task(config).load_model(path)


def define_flags():
    """Defines the command's flags; only when it runs, so that tests can
    import this module beside other commands that define --config."""
    model = flags.DEFINE_string(
        "model",
        None,
        "A flowers GAN with text attention trained on the isoluminant "
        "CoSaL source: a .keras file or a training workdir (model.keras, "
        "else the newest backup/step-*.keras).",
        required=True,
    )
    config = config_flags.DEFINE_config_file(
        "config",
        "experiments/configs/flowers_cosal.py:lbie",
        "The config whose data (the CoSaL sizes, data_dir, max_tokens) and "
        "eval.batch_size the measurement reads: the model's training "
        "config.",
        lock_config=True,
    )
    num_images = flags.DEFINE_integer(
        "num_images", 1000, "How many test images to measure."
    )
    return model, config, num_images


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from experiments import cli

    config, num_images = _CONFIG.value, _NUM_IMAGES.value
    cli.exit_on_user_error(check_arguments, config, num_images)
    # TFDS announces a first build of the data on stdout, which is for the
    # JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        path, model = cli.exit_on_user_error(load_model, _MODEL.value, config)
        result = cli.exit_on_user_error(
            attention_binding, model, config, num_images
        )
    print(json.dumps({"model": path, **result}, indent=2))


if __name__ == "__main__":
    _MODEL, _CONFIG, _NUM_IMAGES = define_flags()
    app.run(main)
