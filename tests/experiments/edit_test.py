"""Tests of `python -m experiments.edit`, run as a user would (subprocess)."""

import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from experiments.configs import cosal
from lbie_tf.cosal import editing, models

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _tiny_model(cell="paper_t4_attn_d8"):
    """An untrained CoSaL model of the given Table 2 cell (small and fast)."""
    keras.utils.set_random_seed(0)
    return models.build_cosal_model(cosal.get_config(cell).model)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A model, a model without attention, an example input and its text."""
    directory = tmp_path_factory.mktemp("edit_inputs")
    _tiny_model().save(directory / "model.keras")
    _tiny_model("paper_t1_noattn_d8").save(directory / "no_attention.keras")
    image, text_file, _ = editing.write_example(directory / "example")
    text = open(text_file).read()
    return {
        "model": str(directory / "model.keras"),
        "no_attention": str(directory / "no_attention.keras"),
        "image": image,
        "text_file": text_file,
        "text": ". ".join(text.split("\n")),
        "dir": directory,
    }


def _edit(*args, cwd=REPO):
    # The CLI's own default log level is part of what is tested.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "experiments.edit", *args],
        cwd=cwd,
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


def _args(files, out, changes=None):
    values = {
        "model": files["model"],
        "image": files["image"],
        "text": files["text"],
        "out": str(out),
    }
    values.update(changes or {})
    return [f"--{k}={v}" for k, v in values.items() if v is not None]


def _image(tmp_path, name, pixels):
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return str(path)


def test_importing_the_cli_does_not_import_tensorflow():
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, experiments.edit; "
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.stdout.strip() == "[]", completed.stderr


def _text_case(files, old, new):
    assert old in files["text"]
    return {"text": files["text"].replace(old, new, 1)}


def _bad_input_cases(files, tmp_path):
    """(changes to the good arguments, fragments the error must contain)."""
    first = files["text"].split(". ")[0]
    rgb = np.asarray(Image.open(files["image"]))
    not_image = tmp_path / "not_image.png"
    not_image.write_text("circle is red")
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"\x00" * 300)
    truncated = tmp_path / "truncated.keras"
    data = open(files["model"], "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    return {
        "unknown_word": (
            _text_case(files, first, "circle is purple"),
            ["Unknown word 'purple'", "CoSaL knows these tokens"],
        ),
        "eight_sentences": (
            {"text": ". ".join(files["text"].split(". ")[1:])},
            ["exactly 9 sentences, got 8"],
        ),
        "ten_sentences": (
            {"text": files["text"] + ". red below circle"},
            ["exactly 9 sentences, got 10"],
        ),
        "long_sentence": (
            _text_case(files, first, "circle is red red"),
            ["exactly 3 tokens"],
        ),
        "short_sentence": (
            _text_case(files, first, "circle blue"),
            ["exactly 3 tokens", "has 2"],
        ),
        "wrong_size": (
            {"image": _image(tmp_path, "small.png", rgb[:32, :32])},
            ["is 32x32 pixels", "expected a 48x48 image"],
        ),
        "not_an_image": (
            {"image": str(not_image)},
            ["is not an image file", "48x48 image (PNG or JPEG)"],
        ),
        "missing_image": (
            {"image": str(tmp_path / "none.png")},
            ["image not found"],
        ),
        "missing_model": (
            {"model": str(tmp_path / "none.keras")},
            ["model not found", ".keras file, a training workdir"],
        ),
        "model_dir_without_model": (
            {"model": str(tmp_path)},
            ["has no model.keras"],
        ),
        "garbage_model": (
            {"model": str(garbage)},
            ["corrupt model file", "not a readable zip archive"],
        ),
        "truncated_model": (
            {"model": str(truncated)},
            ["corrupt model file"],
        ),
        "out_not_png": (
            {"out": str(tmp_path / "out.jpg")},
            ["--out=", "must name a .png file"],
        ),
        "out_dir_missing": (
            {"out": str(tmp_path / "nowhere" / "out.png")},
            ["does not exist"],
        ),
        "missing_model_flag": ({"model": None}, ["--model is required"]),
        "two_texts": (
            {"text_file": files["text_file"]},
            ["exactly one of --text or --text_file"],
        ),
        "bad_scale": ({"scale": 0}, ["--scale must be an integer in 1..64"]),
        "explain_without_attention": (
            {
                "model": files["no_attention"],
                "explain": str(tmp_path / "explain.png"),
            },
            ["--explain needs a model with attention"],
        ),
    }


BAD_INPUTS = [
    "unknown_word",
    "eight_sentences",
    "ten_sentences",
    "long_sentence",
    "short_sentence",
    "wrong_size",
    "not_an_image",
    "missing_image",
    "missing_model",
    "model_dir_without_model",
    "garbage_model",
    "truncated_model",
    "out_not_png",
    "out_dir_missing",
    "missing_model_flag",
    "two_texts",
    "bad_scale",
    "explain_without_attention",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(files, tmp_path, case):
    changes, fragments = _bad_input_cases(files, tmp_path)[case]
    out = tmp_path / "out.png"
    before = sorted(os.listdir(tmp_path))
    completed = _edit(*_args(files, out, changes))
    _assert_one_line_error(completed, *fragments)
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == before
    assert completed.stdout == ""


def test_a_model_keras_cannot_load_is_reported(files, tmp_path):
    # A valid archive whose config names a class Keras does not know: only
    # loading the model finds the problem, after TensorFlow has started.
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(files["model"]) as source:
        with zipfile.ZipFile(broken, "w") as target:
            for name in source.namelist():
                data = source.read(name)
                if name == "config.json":
                    data = data.replace(b'"Functional"', b'"NoSuchModel"')
                target.writestr(name, data)
    out = tmp_path / "out.png"
    completed = _edit(*_args(files, out, {"model": str(broken)}))
    _assert_one_line_error(completed, "cannot load model", "broken.keras")
    assert not out.exists()


def test_write_example_then_edit_with_explain(files, tmp_path):
    completed = _edit(f"--write_example={tmp_path / 'ex'}")
    assert completed.returncode == 0, completed.stderr
    for name in ("in.png", "text.txt", "target.png"):
        assert str(tmp_path / "ex" / name) in completed.stdout

    out, explain = tmp_path / "out.png", tmp_path / "explain.png"
    completed = _edit(
        f"--model={files['model']}",
        f"--image={tmp_path / 'ex' / 'in.png'}",
        f"--text_file={tmp_path / 'ex' / 'text.txt'}",
        f"--out={out}",
        "--scale=4",
        f"--explain={explain}",
    )
    assert completed.returncode == 0, completed.stderr
    assert str(out) in completed.stdout and str(explain) in completed.stdout
    assert "colour per cell" in completed.stdout

    model = keras.saving.load_model(files["model"])
    image = editing.read_silhouette_image(tmp_path / "ex" / "in.png")
    ids, _ = editing.parse_description(
        open(tmp_path / "ex" / "text.txt").read()
    )
    logits = np.asarray(
        model({"image": image[None], "sentences": ids[None]})["logits"]
    )
    written = np.asarray(Image.open(out))
    assert written.shape == (192, 192, 3)
    np.testing.assert_array_equal(
        written[::4, ::4], editing.colorize_labels(logits[0].argmax(-1))
    )
    picture = Image.open(explain)
    assert picture.mode == "RGB" and picture.size[0] > 384
    assert sorted(os.listdir(tmp_path)) == ["ex", "explain.png", "out.png"]
