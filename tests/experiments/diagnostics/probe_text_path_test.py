"""Smoke test of the text-path probe on a tiny untrained released model."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from experiments.configs import cosal, cosal_smoke
from experiments.diagnostics import probe_text_path
from lbie_tf.core import errors
from lbie_tf.cosal import editing, models

ROOT = pathlib.Path(__file__).parents[3]
CELL = "original_t1_attn_d8"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = models.build_cosal_model(cosal.get_config(CELL).model)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def data_config(tmp_path_factory):
    config = cosal_smoke.get_config(CELL)
    config.data.data_dir = str(tmp_path_factory.mktemp("tfds"))
    return config.data


def test_probe_reports_the_text_path(model_path, data_config):
    model = editing.load_model(str(model_path))
    result = probe_text_path.probe_text_path(model, data_config, 4)
    assert result["images"] == 4
    for key, value in result.items():
        if key != "most_attended_sentence_histogram":
            assert np.isfinite(value) and value >= 0.0, key
    # 4 images x 3 x 3 regions, each attending most to one of 9 sentences.
    histogram = result["most_attended_sentence_histogram"]
    assert len(histogram) == 9 and sum(histogram) == 4 * 9
    assert 0.0 < result["mean_update_gate"] < 1.0
    assert 0.0 < result["mean_reset_gate"] < 1.0


def test_probe_rejects_a_model_of_the_other_family(data_config):
    model = models.build_cosal_model(cosal.get_config("paper_t1_attn_d8").model)
    with pytest.raises(errors.UsageError, match="original-family"):
        probe_text_path.probe_text_path(model, data_config, 4)


@pytest.mark.multiprocess
def test_probe_command_prints_json(model_path, data_config):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.diagnostics.probe_text_path",
            f"--model={model_path}",
            f"--config=experiments/configs/cosal_smoke.py:{CELL}",
            f"--config.data.data_dir={data_config.data_dir}",
            "--num_images=2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)
    assert printed["model"] == str(model_path) and printed["images"] == 2
