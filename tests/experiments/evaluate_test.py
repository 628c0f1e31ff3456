"""Tests of CoSaL evaluation: whole-split metrics and the evaluate CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_builders.cosal import generator
from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import artifacts, evaluate_lib
from lbie_tf.cosal import evaluation, input_pipeline
from lbie_tf.cosal.metrics import ColorMeanIoU, ShapeAverageIoU

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


class SilhouetteModel:
    """Predicts colour 1 on every black pixel: a known, imperfect model."""

    def __call__(self, inputs, training=False):
        black = tf.reduce_all(inputs["image"] == 0, axis=-1)
        return {"logits": tf.one_hot(tf.cast(black, tf.int32), 7)}


def test_evaluate_model_sums_over_every_batch():
    examples = [e for _, e in generator.generate_split("test", 7, 3, 6)]
    keys = ("image", "sentences", "color_labels", "shape_labels")
    dataset = tf.data.Dataset.from_tensor_slices(
        {k: np.stack([e[k] for e in examples]) for k in keys}
    )
    pipeline = input_pipeline.build_pipeline(dataset, 3, training=False)
    results = evaluation.evaluate_model(SilhouetteModel(), pipeline, 7)
    assert results["num_examples"] == 7
    # Reference: the same metrics fed the whole split at once.
    colors = np.stack([e["color_labels"] for e in examples])
    shapes = np.stack([e["shape_labels"] for e in examples])
    images = np.stack([e["image"] for e in examples])
    predicted = np.all(images == 0, axis=-1).astype(np.int32)
    color_metric, shape_metric = ColorMeanIoU(7), ShapeAverageIoU()
    color_metric.update_state(colors, predicted)
    shape_metric.update_state(colors, shapes, predicted)
    assert results["miou_colors"] == pytest.approx(float(color_metric.result()))
    assert results["iou_shapes"] == pytest.approx(float(shape_metric.result()))
    # Background is predicted exactly (silhouettes are the shapes).
    assert results["iou_per_shape"][0] == pytest.approx(1.0)
    assert len(results["iou_per_color"]) == 7
    # It never reads the text.
    assert results["text_sensitivity"] == 0.0


class FirstSentenceModel:
    """Colours every black pixel by the last token of the first sentence."""

    def __call__(self, inputs, training=False):
        black = tf.reduce_all(inputs["image"] == 0, axis=-1)
        color = tf.cast(inputs["sentences"][:, 0, 2] % 6 + 1, tf.int32)
        labels = tf.cast(black, tf.int32) * color[:, None, None]
        return {"logits": tf.one_hot(labels, 7)}


def test_text_sensitivity_counts_shape_pixels_that_follow_the_text():
    examples = [e for _, e in generator.generate_split("test", 6, 3, 6)]
    keys = ("image", "sentences", "color_labels", "shape_labels")
    arrays = {k: np.stack([e[k] for e in examples]) for k in keys}
    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    pipeline = input_pipeline.build_pipeline(dataset, 3, training=False)
    results = evaluation.evaluate_model(FirstSentenceModel(), pipeline, 7)
    # Reference: within each batch of 3, image i gets image i-1's text.
    color = arrays["sentences"][:, 0, 2] % 6
    shape_pixels = (arrays["color_labels"] > 0).sum(axis=(1, 2))
    changed = 0
    for start in (0, 3):
        for i in range(start, start + 3):
            j = start + (i - start - 1) % 3
            changed += shape_pixels[i] * (color[i] != color[j])
    assert changed > 0
    assert results["text_sensitivity"] == pytest.approx(
        changed / shape_pixels.sum()
    )


@pytest.mark.parametrize(
    "cell, unit",
    [
        ("paper_t4_attn_d8", "region"),
        ("original_t4_attn_d8", "pixel"),
        ("paper_t1_attn_d8", None),
    ],
)
def test_evaluate_model_reports_which_steps_were_kept(cell, unit):
    import keras

    from experiments.configs import cosal
    from lbie_tf.cosal import models

    examples = [e for _, e in generator.generate_split("test", 5, 3, 6)]
    keys = ("image", "sentences", "color_labels", "shape_labels")
    dataset = tf.data.Dataset.from_tensor_slices(
        {k: np.stack([e[k] for e in examples]) for k in keys}
    )
    pipeline = input_pipeline.build_pipeline(dataset, 2, training=False)
    keras.utils.set_random_seed(0)
    model = models.build_cosal_model(cosal.get_config(cell).model)
    results = evaluation.evaluate_model(model, pipeline, 7)
    if unit is None:
        assert "kept_step_fractions" not in results
        return
    assert results["kept_step_unit"] == unit
    # Reference: the kept steps of all 5 examples in one batch.
    inputs = {
        "image": np.stack([e["image"] for e in examples]),
        "sentences": np.stack([e["sentences"] for e in examples]).astype(
            np.int32
        ),
    }
    steps = models.kept_steps(model(inputs, training=False))
    want = np.bincount(steps.reshape(-1), minlength=4) / steps.size
    np.testing.assert_allclose(results["kept_step_fractions"], want, atol=1e-9)


def test_evaluate_workdir_without_a_model_names_the_problem(tmp_path):
    config = {
        "model": {"family": "paper", "num_steps": 1, "attention": True},
        "data": {"name": "direct_4_small", "data_dir": str(tmp_path)},
    }
    artifacts.write_json(str(tmp_path / "config.json"), config)
    with pytest.raises(ValueError, match="model.keras"):
        evaluate_lib.evaluate_workdir(str(tmp_path))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for workdir, problem in (
        (tmp_path, "No trained model"),
        (tmp_path / "missing", "No training config"),
    ):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "experiments.evaluate",
                f"--workdir={workdir}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert run.stderr.strip().splitlines()[-1].startswith("error: ")
        assert problem in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "--workdir" in run.stdout and "--data_dir" in run.stdout


def test_write_json_is_atomic(tmp_path):
    path = str(tmp_path / "eval.json")
    artifacts.write_json(path, {"a": 1})
    artifacts.write_json(path, {"a": 2})
    assert os.listdir(tmp_path) == ["eval.json"]
    with open(path) as f:
        assert f.read().startswith('{\n  "a": 2')
