"""Smoke tests of the decoder ablation: two training steps per variant."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from experiments.configs import cosal_smoke
from experiments.diagnostics import hybrid_ablation
from lbie_tf.cosal import editing

ROOT = pathlib.Path(__file__).parents[3]
CELL = "original_t1_noattn_d8"
# The first layer of each variant's decoder (after its input).
FIRST_DECODER_LAYERS = {
    "released_decoder": "deconv1",
    "paper_head": "classifier_hidden",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _check_workdir(workdir, variant):
    saved = json.loads((workdir / "eval.json").read_text())
    # The smoke data: 16 training images in batches of 8, 6 test images.
    assert saved["num_examples"] == 6 and saved["train_images"] == 16
    assert 0.0 <= saved["text_sensitivity"] <= 1.0
    resolved = json.loads((workdir / "config.json").read_text())
    assert (
        resolved["model"]["decoder"]
        == (hybrid_ablation.VARIANTS[variant]["model.decoder"])
    )
    decoder = editing.load_model(str(workdir)).get_layer("decoder")
    assert decoder.layers[1].name == FIRST_DECODER_LAYERS[variant]
    # Two training steps: the backup at the epoch's end is step 2's.
    assert (workdir / "backup" / "step-00000002.keras").is_file()
    return saved


@pytest.mark.slow
def test_ablate_trains_and_evaluates_the_variant(tmp_path, data_dir):
    config = cosal_smoke.get_config(CELL)
    config.data.data_dir = data_dir
    workdir = tmp_path / "released_decoder"
    results = hybrid_ablation.ablate(config, "released_decoder", str(workdir))
    saved = _check_workdir(workdir, "released_decoder")
    assert saved["iou_shapes"] == pytest.approx(results["iou_shapes"])


@pytest.mark.slow
@pytest.mark.multiprocess
def test_ablation_command_runs_a_variant(tmp_path, data_dir):
    workdir = tmp_path / "paper_head"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.diagnostics.hybrid_ablation",
            "--variant=paper_head",
            f"--workdir={workdir}",
            f"--config=experiments/configs/cosal_smoke.py:{CELL}",
            f"--config.data.data_dir={data_dir}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("paper_head: iou_shapes ")
    _check_workdir(workdir, "paper_head")
