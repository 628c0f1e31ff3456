"""Tests of `python -m experiments.export`, run in a subprocess."""

import os
import subprocess
import sys

import keras
import pytest

from experiments.configs import cosal
from lbie_tf.cosal import models

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _tiny_model(cell="paper_t4_attn_d8"):
    """An untrained CoSaL model of the given Table 2 cell (small and fast)."""
    keras.utils.set_random_seed(0)
    return models.build_cosal_model(cosal.get_config(cell).model)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A training workdir as train_lib leaves it (only model.keras needed)."""
    directory = tmp_path_factory.mktemp("workdir")
    _tiny_model().save(directory / "model.keras")
    return directory


def _export(*args):
    # The CLI's own default log level is part of what is tested.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "experiments.export", *args],
        cwd=REPO,
        env=env,
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
        assert fragment in lines[0]


def test_importing_the_cli_does_not_import_tensorflow():
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, experiments.export; "
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.stdout.strip() == "[]", completed.stderr


def test_export_from_a_workdir(workdir, tmp_path):
    out = tmp_path / "export"
    completed = _export(f"--model={workdir}", f"--out={out}")
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    # SavedModel writing's absl INFO lines (assets, fingerprint) are off by
    # default: the command prints only where its artefacts are.
    assert "Assets written to" not in completed.stderr
    assert "fingerprint" not in completed.stderr
    keras_path = out / "model.keras"
    saved_model = out / "saved_model"
    assert f"keras model:      {keras_path}" in completed.stdout
    assert f"SavedModel:       {saved_model}" in completed.stdout
    assert keras_path.is_file() and (saved_model / "saved_model.pb").is_file()
    assert sorted(os.listdir(tmp_path)) == ["export"]


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing_model", ["model not found"]),
        ("corrupt_model", ["corrupt model file"]),
        ("out_has_other_files", ["holds other files", "notes.txt"]),
        ("out_is_a_file", ["is a file"]),
        ("no_out", ["--out is required"]),
        ("extra_argument", ["unexpected arguments"]),
    ],
)
def test_bad_input_is_one_line_exit_2(workdir, tmp_path, case, fragments):
    model, out, extra = str(workdir), str(tmp_path / "export"), []
    if case == "missing_model":
        model = str(tmp_path / "none.keras")
    elif case == "corrupt_model":
        (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 truncated")
        model = str(tmp_path / "bad.keras")
    elif case == "out_has_other_files":
        os.mkdir(out)
        (tmp_path / "export" / "notes.txt").write_text("keep")
    elif case == "out_is_a_file":
        (tmp_path / "export").write_text("a file")
    elif case == "extra_argument":
        extra = ["stray"]
    before = sorted(os.listdir(tmp_path))
    args = [f"--model={model}"] + ([] if case == "no_out" else [f"--out={out}"])
    completed = _export(*args, *extra)
    _assert_one_line_error(completed, *fragments)
    assert sorted(os.listdir(tmp_path)) == before
    if case == "out_has_other_files":
        assert os.listdir(out) == ["notes.txt"]
