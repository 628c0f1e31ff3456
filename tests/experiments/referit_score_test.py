"""Tests of the referit_score CLI on a tiny manual dir with hand-computed
scores, and of its one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.lbie_tf.referit import fake_manual_dir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _needs_scipy():
    pytest.importorskip(
        "scipy.io",
        reason="scipy (reads and writes ReferIt's .mat masks) is not "
        "installed in this environment",
    )


def _score(*args):
    return subprocess.run(
        [sys.executable, "-m", "experiments.referit_score", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_one_line_error(completed, *fragments):
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_scores_match_hand_computed_values(tmp_path):
    _needs_scipy()
    manual_dir, pred_dir = fake_manual_dir.write(str(tmp_path))
    completed = _score(
        f"--pred_dir={pred_dir}",
        f"--manual_dir={manual_dir}",
        "--split=test",
        "--progress_every=2",
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert list(results) == list(fake_manual_dir.EXPECTED)
    assert results == pytest.approx(fake_manual_dir.EXPECTED)
    # stderr is not a terminal here: plain progress lines.
    progress = [
        line for line in completed.stderr.splitlines() if "scored" in line
    ]
    assert progress == ["scored 2 / 4 pairs", "scored 4 / 4 pairs"]


def test_missing_predictions(tmp_path):
    manual_dir, pred_dir = fake_manual_dir.write(
        str(tmp_path), readable_masks=False
    )
    for name in fake_manual_dir.PREDICTION_NAMES[1:]:
        os.remove(os.path.join(pred_dir, name))
    completed = _score(f"--pred_dir={pred_dir}", f"--manual_dir={manual_dir}")
    _assert_one_line_error(
        completed,
        "3 of 4 predictions are missing",
        ", ".join(fake_manual_dir.PREDICTION_NAMES[1:]),
    )


def test_wrong_size_names_the_file_and_both_sizes(tmp_path):
    _needs_scipy()
    manual_dir, pred_dir = fake_manual_dir.write(str(tmp_path))
    path = os.path.join(pred_dir, "2_1__0.png")
    Image.fromarray(np.zeros((3, 5), np.uint8)).save(path)
    completed = _score(f"--pred_dir={pred_dir}", f"--manual_dir={manual_dir}")
    _assert_one_line_error(
        completed, path, "5x3 pixels", "2_1.mat is 3x5", "original size"
    )


def test_missing_query_file_and_prediction_dir(tmp_path):
    manual_dir, pred_dir = fake_manual_dir.write(
        str(tmp_path), readable_masks=False
    )
    completed = _score(
        f"--pred_dir={pred_dir}", f"--manual_dir={manual_dir}", "--split=val"
    )
    _assert_one_line_error(completed, "referit_query_val.json", "'val'")
    missing = os.path.join(str(tmp_path), "nowhere")
    completed = _score(f"--pred_dir={missing}", f"--manual_dir={manual_dir}")
    _assert_one_line_error(completed, missing, "not a directory")
