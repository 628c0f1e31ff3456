"""A smoke run of the isoluminant CoSaL comparison: both models train and
the results files hold the keys the issue names."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

TINY = [
    "--config.data.cosal_train_size=16",
    "--config.data.cosal_test_size=4",
    "--config.data.shuffle_buffer=16",
    "--config.train.epochs=1",
    "--config.train.eval_every_epochs=1",
    "--config.train.batch_size=8",
    "--config.train.verbose=0",
    "--config.eval.batch_size=4",
    "--config.model.ngf=4",
    "--config.model.embedding_dim=4",
    "--config.model.lstm_units=4",
    "--config.model.attention_units=4",
    "--config.model.discriminator_filters=4",
]


@pytest.mark.slow
def test_both_models_train_and_the_results_are_written(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.colorization_cosal",
            f"--workdir={tmp_path / 'runs'}",
            f"--results_dir={tmp_path / 'results'}",
            f"--config.data.data_dir={tmp_path / 'data'}",
            *TINY,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(
        (tmp_path / "results/colorization_cosal.json").read_text()
    )
    assert {
        "accuracy_text",
        "accuracy_no_text",
        "num_colors",
        "test_images",
        "command",
    } <= set(result)
    assert result["num_colors"] == 6 and result["test_images"] == 4
    assert 0.0 <= result["accuracy_text"] <= 1.0
    for run in result["runs"]:
        assert len(run["shape_color_accuracy_by_shape"]) == 9
        # The one epoch's test accuracy, read back from TensorBoard: the
        # number the final evaluation gives for the same weights.
        assert list(run["accuracy_by_epoch"]) == ["1"]
        assert run["accuracy_by_epoch"]["1"] == pytest.approx(
            run["shape_color_accuracy"]
        )
    text = (tmp_path / "results/colorization_cosal.md").read_text()
    assert "no_text" in text and "experiments.colorization_cosal" in text
    assert "(colorization_cosal.png)" in text
    assert "| half thin ellipse |" in text and "| 1 |" in text
    # The 4 test images (fewer than --num_examples' 6), each a row of four
    # 48 x 48 panels enlarged 4 times with 4 px between them, 4 caption
    # lines of 12 px under it.
    picture = np.asarray(
        Image.open(tmp_path / "results/colorization_cosal.png")
    )
    assert picture.shape == (4 * (4 * 48 + 4 * 12), 4 * 4 * 48 + 3 * 4, 3)
    # Not blank: grey inputs, colourised panels and caption text.
    assert picture.std() > 10
