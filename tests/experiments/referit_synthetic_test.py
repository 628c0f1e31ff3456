"""The offline ReferIt comparison command, on a tiny synthetic set."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[2]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_command_trains_each_model_and_writes_the_table(tmp_path):
    overrides = [
        f"--config.data.data_dir={tmp_path / 'data'}",
        "--config.data.synthetic_train_images=3",
        "--config.data.synthetic_test_images=2",
        "--config.train.epochs=1",
        "--config.train.batch_size=4",
        "--config.train.verbose=0",
        "--config.eval.batch_size=4",
    ]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.referit_synthetic",
            f"--workdir={tmp_path / 'runs'}",
            f"--results_dir={tmp_path / 'results'}",
            "--models=hu,text_blind",
            *overrides,
        ],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = json.loads(
        (tmp_path / "results" / "referit_synthetic.json").read_text()
    )
    assert [row["model"] for row in rows] == ["hu", "text_blind"]
    for row in rows:
        assert 0.0 <= row["overall_iou"] <= 1.0 and row["num_pairs"] > 0
        assert "--config.train.epochs=1" in row["command"]
    table = (tmp_path / "results" / "referit_synthetic.md").read_text()
    assert "| text_blind |" in table
