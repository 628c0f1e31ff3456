"""Tests of the attention-binding measurement on a tiny isoluminant CoSaL
build and untrained flowers models."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from experiments.configs import flowers_cosal
from experiments.diagnostics import attention_binding
from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import artifacts, errors
from lbie_tf.core import task as task_lib

ROOT = pathlib.Path(__file__).parents[3]
NUM_IMAGES = 6
# The tiny config, as --config.x=y flags for the command.
TINY = {
    "data.cosal_train_size": 8,
    "data.cosal_test_size": NUM_IMAGES,
    "data.shuffle_buffer": 8,
    "eval.batch_size": 4,
    "model.ngf": 4,
    "model.embedding_dim": 4,
    "model.lstm_units": 4,
    "model.attention_units": 4,
    "model.discriminator_filters": 4,
}


MAX_TOKENS = flowers_cosal.get_config().data.max_tokens


def tiny_config(model_name, data_dir):
    config = flowers_cosal.get_config(model_name)
    for field, value in TINY.items():
        group, key = field.split(".")
        config[group][key] = value
    config.data.data_dir = str(data_dir)
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def config(data_dir):
    return tiny_config("lbie", data_dir)


@pytest.fixture(scope="module")
def task(config):
    # Builds the TFDS files and the vocabulary once for the module.
    task = task_lib.build_task(config)
    task.vocabulary()
    return task


@pytest.fixture(scope="module")
def model_path(task, tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("workdir") / "model.keras"
    artifacts.save_model(task.build_model(), str(path))
    return path


@pytest.fixture(scope="module")
def model(task, model_path):
    return task.load_model(str(model_path))


@pytest.fixture(scope="module")
def test_batch(task):
    """The test images in one batch: (inputs, targets) as NumPy."""
    inputs, targets = next(
        iter(task.build_inputs("test", False, batch_size=NUM_IMAGES))
    )
    return (
        {key: value.numpy() for key, value in inputs.items()},
        {key: value.numpy() for key, value in targets.items()},
    )


class UniformWords(keras.layers.Layer):
    """Attention weights shaped like its first input, uniform over the
    non-padding tokens of its second."""

    def call(self, inputs):
        attention_weights, tokens = inputs
        words = keras.ops.cast(tokens > 0, "float32")
        words = words / keras.ops.sum(words, axis=1, keepdims=True)
        ones = keras.ops.ones_like(attention_weights)
        return ones * words[:, None, :, None]


def uniform_attention(generator):
    """`generator` with its attention replaced by `UniformWords`."""
    inputs = {
        "lightness": keras.Input((None, None, 1), name="lightness"),
        "tokens": keras.Input((MAX_TOKENS,), dtype="int32", name="tokens"),
    }
    outputs = generator(inputs)
    return keras.Model(
        inputs,
        {
            "ab": outputs["ab"],
            "attention_weights": UniformWords()(
                [outputs["attention_weights"], inputs["tokens"]]
            ),
        },
    )


class ForcedModel:
    """What the measurement reads of a GAN: its generator."""

    def __init__(self, generator):
        self.generator = generator


def colour_word(color):
    from data_builders.cosal import vocabulary as cosal_vocabulary

    return cosal_vocabulary.COLOR_NAMES[color].split()[-1]


def test_binding_groups_match_a_hand_computed_batch():
    # One image, 2 x 2 attention regions over a 4 x 4 label map: every
    # second pixel, so the regions read labels [[1, 2], [0, 1]]
    # (colour 0 in regions 0 and 3, colour 1 in region 1).
    labels = np.array(
        [[[1, 5, 2, 5], [5, 5, 5, 5], [0, 5, 1, 5], [5, 5, 5, 5]]]
    )
    # Words: colour 0's, colour 1's, colour 0's, another word, colour 4's,
    # padding.
    color_ids = [10, 11, None, 12, 13, 14]
    tokens = np.array([[10, 11, 10, 3, 13, 0]])
    attention = np.array(
        [
            [0.4, 0.2, 0.1, 0.2, 0.1, 0.0],
            [0.1, 0.1, 0.1, 0.6, 0.1, 0.0],
            [0.2, 0.2, 0.2, 0.2, 0.2, 0.0],
            [0.3, 0.2, 0.3, 0.1, 0.1, 0.0],
        ]
    )[None]
    groups = attention_binding.binding_groups(
        attention, tokens, labels, color_ids
    )
    # Colour 0 (regions 0 and 3): mass (0.5 + 0.6) / 2 on its two words of
    # five (uniform 0.4), colour-word mass (0.8 + 0.9) / 2, the share of
    # the means 0.55 / 0.85 against 2 of 4 colour words. Colour 1 (region
    # 1): mass 0.1 (uniform 0.2), colour-word mass 0.4. Colour 4 (label 5)
    # is named but only in skipped pixels; label 0 is the background.
    np.testing.assert_allclose(
        groups,
        [(1.375, 0.85, 0.55 / 0.85, 0.5), (0.5, 0.4, 0.25, 0.25)],
    )


def test_reports_well_formed_numbers(model, config, test_batch):
    result = attention_binding.attention_binding(model, config, NUM_IMAGES)
    assert result["images"] == NUM_IMAGES
    assert result["attention_resolution"] == 48 // 4
    # Counted here from the caption text and a reshape of the label maps.
    _, targets = test_batch
    side = result["attention_resolution"]
    step = targets["color_labels"].shape[1] // side
    blocks = (NUM_IMAGES, side, step, side, step)
    small = targets["color_labels"].reshape(blocks)[:, :, 0, :, 0]
    expected = sum(
        (small[b] == color + 1).any()
        and colour_word(color) in caption.decode().split()
        for b, caption in enumerate(targets["caption"])
        for color in range(6)
    )
    assert expected > 0
    assert result["shape_colour_groups"] == expected
    for key in (
        "mass_on_any_colour_word_mean",
        "share_of_colour_word_mass_on_true_colour_mean",
        "same_share_if_colour_words_were_uniform_mean",
    ):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["mass_on_true_colour_words_over_uniform_mean"] > 0.0
    # Reading fewer images counts fewer groups.
    fewer = attention_binding.attention_binding(model, config, 2)
    assert fewer["images"] == 2
    assert 0 < fewer["shape_colour_groups"] < result["shape_colour_groups"]


def test_uniform_attention_is_exactly_chance(model, config, test_batch):
    forced = ForcedModel(uniform_attention(model.generator))
    result = attention_binding.attention_binding(forced, config, NUM_IMAGES)
    assert result["mass_on_true_colour_words_over_uniform_mean"] == (
        pytest.approx(1.0, rel=1e-5)
    )
    assert result["mass_on_true_colour_words_over_uniform_median"] == (
        pytest.approx(1.0, rel=1e-5)
    )
    assert result["share_of_colour_word_mass_on_true_colour_mean"] == (
        pytest.approx(result["same_share_if_colour_words_were_uniform_mean"])
    )
    # The mass on colour words is then their share of the caption's words,
    # counted here from the caption text, once per group.
    inputs, targets = test_batch
    colour_words = {colour_word(color) for color in range(6)}
    side = result["attention_resolution"]
    step = targets["color_labels"].shape[1] // side
    shares = []
    for b, caption in enumerate(targets["caption"]):
        words = caption.decode().split()
        present = set(targets["color_labels"][b, ::step, ::step].ravel())
        for color in range(6):
            if color + 1 in present and colour_word(color) in words:
                shares.append(
                    sum(word in colour_words for word in words) / len(words)
                )
    assert result["mass_on_any_colour_word_mean"] == pytest.approx(
        np.mean(shares), rel=1e-5
    )


def test_a_workdir_without_a_final_model_reads_its_newest_backup(
    model_path, tmp_path
):
    backup = tmp_path / "backup"
    backup.mkdir()
    for step in (500, 1000):
        shutil.copy(model_path, backup / f"step-{step:08d}.keras")
    assert attention_binding.model_file(str(tmp_path)) == str(
        backup / "step-00001000.keras"
    )
    shutil.copy(model_path, tmp_path / "model.keras")
    assert attention_binding.model_file(str(tmp_path)) == str(
        tmp_path / "model.keras"
    )


def test_rejects_a_workdir_without_a_model(tmp_path):
    with pytest.raises(errors.ModelFileError, match="no model.keras"):
        attention_binding.model_file(str(tmp_path))


def test_rejects_the_no_text_baseline(data_dir):
    no_text_config = tiny_config("no_text", data_dir)
    no_text = task_lib.build_task(no_text_config).build_model()
    with pytest.raises(errors.UsageError, match="no text attention"):
        attention_binding.attention_binding(no_text, no_text_config, 2)


def test_rejects_a_model_of_another_vocabulary(model, config):
    other = tiny_config("lbie", config.data.data_dir)
    # A vocabulary of the words seen at least 1000 times: a few.
    other.data.vocabulary_min_count = 1000
    with pytest.raises(errors.UsageError, match="token ids"):
        attention_binding.attention_binding(model, other, 2)


def test_rejects_another_data_source(model, config):
    other = tiny_config("lbie", config.data.data_dir)
    other.data.source = "oxford_flowers_captions"
    with pytest.raises(errors.UsageError, match="cosal_isoluminant"):
        attention_binding.attention_binding(model, other, 2)


@pytest.mark.parametrize("num_images", [0, -3])
def test_rejects_fewer_than_one_image(model, config, num_images):
    with pytest.raises(errors.UsageError, match="at least 1"):
        attention_binding.attention_binding(model, config, num_images)


@pytest.mark.multiprocess
def test_command_prints_json(model_path, data_dir, task):
    command = [
        sys.executable,
        "-m",
        "experiments.diagnostics.attention_binding",
        f"--model={model_path.parent}",
        "--config=experiments/configs/flowers_cosal.py:lbie",
        f"--config.data.data_dir={data_dir}",
        *[f"--config.{field}={value}" for field, value in TINY.items()],
    ]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def run(num_images):
        return subprocess.run(
            [*command, f"--num_images={num_images}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=environment,
        )

    completed = run(2)
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)
    assert printed["model"] == str(model_path) and printed["images"] == 2
    assert printed["attention_resolution"] == 12
    refused = run(0)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: --num_images must be at least 1; received 0."
    )
