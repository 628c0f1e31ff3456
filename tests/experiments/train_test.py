"""End-to-end tests of CoSaL training on a tiny custom dataset."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from experiments import cli
from experiments.configs import cosal_smoke
from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import callbacks, evaluate_lib, train_lib
from lbie_tf.core import task as task_lib
from lbie_tf.cosal import summaries
from lbie_tf.cosal import task as cosal_task

ROOT = pathlib.Path(__file__).parents[2]


def tiny_config(cell, data_dir, epochs=1):
    """The cell's smoke config (16 train / 6 test images, batch 8)."""
    config = cosal_smoke.get_config(cell)
    config.data.data_dir = str(data_dir)
    config.train.epochs = epochs
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def test_train_and_evaluate_writes_artefacts_and_resumes(tmp_path, data_dir):
    workdir = tmp_path / "run"
    config = tiny_config("paper_t4_attn_d4", data_dir)
    results = train_lib.train_and_evaluate(config, str(workdir))
    for name in ("config.json", "model.keras", "eval.json"):
        assert (workdir / name).is_file(), name
    # 16 training images, batch 8: one backup per epoch end.
    assert (workdir / "backup" / "step-00000002.keras").is_file()
    assert list((workdir / "tensorboard").rglob("events.out.tfevents.*"))
    saved = json.loads((workdir / "eval.json").read_text())
    assert saved["num_examples"] == 6 and saved["split"] == "test"
    assert saved["train_images"] == 16 and saved["epochs"] == 1
    assert saved["paper_iou"] == pytest.approx(0.5033)
    assert 0.0 <= saved["iou_shapes"] <= 1.0
    assert saved["iou_shapes"] == pytest.approx(results["iou_shapes"])
    resolved = json.loads((workdir / "config.json").read_text())
    assert resolved["model"]["family"] == "paper"
    assert resolved["data"]["overrides"]["train_size"] == 16

    # A third of the 2 training batches warm the gate up (rounded).
    gate = (
        keras.saving.load_model(str(workdir / "model.keras"))
        .get_layer("fusion")
        .termination_gate
    )
    assert gate.warmup_steps == 1 and int(gate.step.numpy()) == 2

    # The saved model gives the metrics eval.json holds.
    again = evaluate_lib.evaluate_workdir(str(workdir))
    assert again["iou_shapes"] == pytest.approx(saved["iou_shapes"])
    assert again["miou_colors"] == pytest.approx(saved["miou_colors"])

    # A second run with more epochs resumes from the newest backup.
    model_before = keras.saving.load_model(
        str(workdir / "backup" / "step-00000002.keras")
    )
    step_before = int(model_before.optimizer.iterations.numpy())
    saved_epoch2 = train_lib.train_and_evaluate(
        tiny_config("paper_t4_attn_d4", data_dir, epochs=2), str(workdir)
    )
    resumed = keras.saving.load_model(
        str(workdir / "backup" / "step-00000004.keras")
    )
    assert int(resumed.optimizer.iterations.numpy()) == 2 * step_before
    # Rerunning a finished run trains nothing and evaluates again.
    again = train_lib.train_and_evaluate(
        tiny_config("paper_t4_attn_d4", data_dir, epochs=2), str(workdir)
    )
    assert again["iou_shapes"] == pytest.approx(saved_epoch2["iou_shapes"])
    assert not [p for p in os.listdir(workdir) if p.startswith(".tmp")]


def test_backups_are_atomic_and_pruned(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    callback = callbacks.StepBackup(str(tmp_path), every_steps=0, keep=2)
    callback.set_model(model)
    for step in range(1, 4):
        model.optimizer.iterations.assign(step)
        callback.on_epoch_end(step - 1)
    assert sorted(os.listdir(tmp_path)) == [
        "step-00000002.keras",
        "step-00000003.keras",
    ]
    # A leftover temporary file of a crashed save is never resumed from.
    (tmp_path / ".tmp-1-step-00000009.keras").write_bytes(b"partial")
    assert callbacks.latest_backup(str(tmp_path)) == (
        3,
        str(tmp_path / "step-00000003.keras"),
    )


def test_colorize_and_attention_pictures():
    labels = np.array([[[0, 1], [3, 6]]])
    rgb = np.asarray(summaries.colorize(labels))
    np.testing.assert_array_equal(
        rgb[0], [[[255, 255, 255], [0, 0, 255]], [[255, 0, 0], [255, 255, 0]]]
    )
    weights = np.zeros((1, 4, 9, 2), np.float32)
    weights[0, :, 3, 0] = -2.0
    weights[0, :, 5, 1] = 1.0
    pictures = summaries.attention_pictures(weights, cell_pixels=2)
    assert len(pictures) == 2 and pictures[0].shape == (1, 8, 18, 3)
    assert pictures[0][0, 0, 6, 0] == 255 and pictures[0][0, 0, 0, 0] == 0
    markdown = summaries.comparison_markdown(
        {"iou_shapes": 0.5, "miou_colors": 0.25}, 0.7017
    )
    assert "0.5000" in markdown and "0.7017" in markdown


def test_cli_help_and_config_override(tmp_path, data_dir):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # absl's --help exits with status 1 after printing.
    help_text = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert "--workdir" in help_text and "--config" in help_text
    missing = subprocess.run(
        [sys.executable, "-m", "experiments.train"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "workdir" in missing.stderr


def test_cli_rejects_a_bad_model_config_in_one_line(tmp_path, capsys):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    workdir = tmp_path / "bad"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train",
            "--config=experiments/configs/cosal.py:paper_t4_attn_d4",
            f"--workdir={workdir}",
            "--config.model.termination_warmup=1.5",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "model.termination_warmup" in lines[0]
    assert "Traceback" not in completed.stderr
    assert not workdir.exists()
    # The other bad values, through the call the command makes first.
    for cell, key, value in (
        ("paper_t4_attn_d4", "family", "vgg"),
        ("original_t1_attn_d4", "decoder", "unet"),
    ):
        config = cosal_smoke.get_config(cell)
        config.model[key] = value
        with pytest.raises(SystemExit) as exit_info:
            cli.exit_on_user_error(task_lib.build_task, config)
        assert exit_info.value.code == cli.EXIT_USER_ERROR
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        assert f"model.{key}" in lines[0]


def test_class_count_follows_the_number_of_colours(tmp_path):
    config = tiny_config("paper_t1_attn_d4", str(tmp_path / "tfds"))
    config.data.overrides.num_colors = 3
    results = train_lib.train_and_evaluate(config, str(tmp_path / "run"))
    assert len(results["iou_per_color"]) == 4
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    assert model.output["logits"].shape[-1] == 4


def test_evaluation_callback_reads_the_whole_cached_split(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    size = 10
    examples = tf.data.Dataset.from_tensor_slices(
        (
            {
                "image": rng.integers(0, 255, (size, 48, 48, 3), np.uint8),
                "sentences": rng.integers(0, 20, (size, 9, 3), np.int32),
            },
            {
                "color_labels": rng.integers(0, 7, (size, 48, 48), np.uint8),
                "shape_labels": rng.integers(0, 10, (size, 48, 48), np.uint8),
            },
        )
    )
    test = examples.cache().batch(4).prefetch(2)
    task = cosal_task.CosalTask(tiny_config("paper_t1_attn_d4", tmp_path))
    callback = callbacks.EvaluationCallback(task, test, str(tmp_path / "logs"))
    assert callback.num_examples == size
    assert callback.sample[0]["image"].shape[0] == 4
    # The cache is whole: a later pass reads every example.
    assert sum(int(b[0]["image"].shape[0]) for b in test) == size
    callback.check_complete({"num_examples": size})
    with pytest.raises(RuntimeError, match="read 7 of the 10 test examples"):
        callback.check_complete({"num_examples": 7})
