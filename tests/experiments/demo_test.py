"""The demo entry point runs every stage and leaves every artefact."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.slow
@pytest.mark.multiprocess
def test_demo_writes_every_artefact(tmp_path):
    workdir = tmp_path / "demo"
    command = [
        sys.executable,
        "-m",
        "experiments.demo",
        f"--workdir={workdir}",
        "--train_size=48",
        "--test_size=16",
        "--config.train.epochs=1",
        "--config.train.batch_size=16",
        f"--config.data.data_dir={tmp_path / 'tfds'}",
    ]
    completed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads((workdir / "demo.json").read_text())
    for key in (
        "model_keras",
        "eval_json",
        "saved_model",
        "example_input",
        "edited_image",
        "explain_image",
    ):
        assert os.path.exists(summary[key]), key
        assert summary[key] in completed.stdout
    assert 0.0 <= summary["iou_shapes"] <= 1.0
    edited = np.asarray(Image.open(summary["edited_image"]))
    assert edited.shape == (48 * 4, 48 * 4, 3)
    evaluation = json.loads((workdir / "eval.json").read_text())
    assert evaluation["iou_shapes"] == summary["iou_shapes"]
    # --config.train.epochs wins over the demo's own 12 epochs.
    assert evaluation["epochs"] == 1


def test_demo_overrides_shrink_data_and_set_epochs_when_asked():
    from experiments.configs import cosal
    from lbie_tf.cosal import demo

    config = demo.demo_overrides(
        cosal.get_config("paper_t4_attn_d8"), 100, 20, epochs=12
    )
    assert config.data.overrides.train_size == 100
    assert config.data.overrides.test_size == 20
    assert config.data.train_examples == -1
    assert config.train.epochs == 12
    kept = demo.demo_overrides(cosal.get_config("paper_t4_attn_d8"))
    assert (
        kept.train.epochs == cosal.get_config("paper_t4_attn_d8").train.epochs
    )
