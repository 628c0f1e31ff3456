"""Tests of export_lib: the .keras copy, the SavedModel signature and its
in-graph tokeniser, a fresh-process reload, and atomic writes."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_builders.cosal import generator, vocabulary
from experiments.configs import cosal
from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import errors, export_lib

# Runs with only TensorFlow importable: cwd is a temporary directory and
from lbie_tf.cosal import editing, models, serving

# PYTHONPATH is unset, so no project module can be found.
_FRESH_PROCESS = r"""
import importlib.util, json, sys
import numpy as np
import tensorflow as tf

for name in ("lbie_tf", "keras_layers", "data_builders", "experiments"):
    assert importlib.util.find_spec(name) is None, name
inputs_path, *export_dirs = sys.argv[1:]
inputs = np.load(inputs_path)
requests = json.load(open(inputs_path + ".json"))
for export_dir in export_dirs:
    serve = tf.saved_model.load(export_dir + "/saved_model").signatures[
        "serving_default"
    ]
    outputs = serve(
        image=tf.constant(inputs["image"]),
        sentences=tf.constant(requests["good"]),
    )
    np.savez(export_dir + ".npz", **{k: v.numpy() for k, v in outputs.items()})
    errors = {}
    for name, bad in requests["bad"].items():
        try:
            serve(
                image=tf.constant(inputs["image"][:1]),
                sentences=tf.constant(bad),
            )
            errors[name] = "no error"
        except tf.errors.InvalidArgumentError as error:
            errors[name] = error.message
    json.dump(errors, open(export_dir + ".errors.json", "w"))
assert not any(
    m.split(".")[0] in ("lbie_tf", "keras_layers", "data_builders")
    for m in sys.modules
)
"""


def _tiny_model(cell="paper_t4_attn_d8"):
    """An untrained CoSaL model of the given Table 2 cell (small and fast)."""
    keras.utils.set_random_seed(0)
    return models.build_cosal_model(cosal.get_config(cell).model)


# One model per family, plus a T = 1 model without attention.
CELLS = ("paper_t4_attn_d8", "original_t4_attn_d8", "paper_t1_noattn_d4")


@pytest.fixture(scope="module")
def tiny_models():
    return {cell: _tiny_model(cell) for cell in CELLS}


@pytest.fixture(scope="module")
def model(tiny_models):
    return tiny_models["paper_t4_attn_d8"]


@pytest.fixture(scope="module")
def small_model(tiny_models):
    """The fastest model to export, for the tests of the file handling."""
    return tiny_models["paper_t1_noattn_d4"]


@pytest.fixture(scope="module")
def exports(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    return {
        cell: export_lib.export_model(model, root / cell)
        for cell, model in tiny_models.items()
    }


@pytest.fixture(scope="module")
def exported(exports):
    return exports["paper_t4_attn_d8"]


def _examples(count):
    examples = [
        generator.generate_example(
            generator.example_rng(0, "test", index), num_direct=4 + index
        )
        for index in range(count)
    ]
    images = np.stack([e["image"] for e in examples])
    texts = [list(e["sentence_text"]) for e in examples]
    ids = np.stack([e["sentences"] for e in examples])
    return images, texts, ids


def _tokenize(sentences):
    """Tokenises in a graph, as the exported signature does."""
    server = serving._Serving(tf, keras.Model())
    return tf.function(server.tokenize)(tf.constant(sentences))


def test_tokenizer_matches_the_python_vocabulary():
    rng = np.random.default_rng(0)
    sentences, expected = [], []
    for _ in range(27):
        words = [vocabulary.TOKENS[i] for i in rng.integers(0, 20, size=3)]
        # Mixed case, runs of spaces and edge punctuation, as people type.
        text = "  ".join(w.upper() if rng.random() < 0.3 else w for w in words)
        text = text.replace(" ", " " * int(rng.integers(1, 3)))
        text = text + rng.choice(["", ".", " !", ";"])
        sentences.append(text)
        expected.append(vocabulary.sentence_to_ids(text))
    ids = _tokenize(np.reshape(sentences, (3, 9)))
    np.testing.assert_array_equal(ids.numpy(), np.reshape(expected, (3, 9, 3)))


def test_tokenizer_joins_overlapping_multi_word_tokens():
    text = [
        "half fat ellipse is light green",
        "fat ellipse is red",
        "half thin ellipse is blue",
        "thin ellipse is grey",
        "reverse triangle is black",
        "triangle is yellow",
        "light green below half fat ellipse",
        "red left fat ellipse",
        "blue above reverse triangle",
    ]
    ids = _tokenize([text]).numpy()[0]
    expected = [vocabulary.sentence_to_ids(s) for s in text]
    np.testing.assert_array_equal(ids, expected)


@pytest.mark.parametrize(
    "first, fragments",
    [
        ("circle is purple", ["Unknown CoSaL word", "purple", "rectangle"]),
        ("circle is red red", ["exactly 3 tokens", "4 3 3"]),
        ("circle red", ["exactly 3 tokens", "2 3 3"]),
    ],
)
def test_tokenizer_fails_clearly(first, fragments):
    text = [[first] + ["red below circle"] * 8]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _tokenize(text)
    for fragment in fragments:
        assert fragment in info.value.message


def test_export_writes_keras_file_and_saved_model(exported, model):
    assert sorted(os.listdir(exported.export_dir)) == [
        "model.keras",
        "saved_model",
        "task.json",
    ]
    assert export_lib.read_task_name(exported.export_dir) == "cosal"
    assert os.path.isfile(
        os.path.join(exported.saved_model_dir, "saved_model.pb")
    )
    # No staging directories are left beside the exports.
    parent = os.path.dirname(exported.export_dir)
    assert sorted(os.listdir(parent)) == sorted(CELLS)
    reloaded = keras.saving.load_model(exported.keras_path)
    images, _, ids = _examples(2)
    inputs = {"image": images, "sentences": ids}
    np.testing.assert_allclose(
        reloaded(inputs)["logits"], model(inputs)["logits"], atol=1e-6
    )


def test_signature_spec(exported):
    serve = tf.saved_model.load(exported.saved_model_dir).signatures[
        "serving_default"
    ]
    _, inputs = serve.structured_input_signature
    assert inputs["image"].dtype == tf.uint8
    assert inputs["image"].shape.as_list() == [None, 48, 48, 3]
    assert inputs["sentences"].dtype == tf.string
    assert inputs["sentences"].shape.as_list() == [None, 9]
    outputs = serve.structured_outputs
    assert outputs["labels"].dtype == tf.uint8
    assert outputs["colored_image"].dtype == tf.uint8
    # The paper model's fused map is 6 x 6 regions; T = 4 steps.
    assert outputs["attention_weights"].shape.as_list() == [None, 36, 9, 4]
    assert "stop_probabilities" not in outputs


@pytest.fixture(scope="module")
def served(exports, tmp_path_factory):
    """Runs every export's signature in ONE fresh process (TensorFlow starts
    once) and returns the inputs and, per cell, its outputs and errors."""
    directory = tmp_path_factory.mktemp("fresh_process")
    images, texts, ids = _examples(3)
    # Case, spaces and full stops must not change the tokens.
    texts[1] = [s.upper() + "." for s in texts[1]]
    texts[2] = [s.replace(" ", "   ") for s in texts[2]]
    inputs_path = str(directory / "inputs.npz")
    np.savez(inputs_path, image=images)
    bad = {
        "unknown": [["circle is purple"] + texts[0][1:]],
        "length": [["circle is red red"] + texts[0][1:]],
    }
    json.dump({"good": texts, "bad": bad}, open(inputs_path + ".json", "w"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    export_dirs = [exports[cell].export_dir for cell in CELLS]
    completed = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, inputs_path, *export_dirs],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = {
        cell: (
            np.load(path + ".npz"),
            json.load(open(path + ".errors.json")),
        )
        for cell, path in zip(CELLS, export_dirs, strict=True)
    }
    return images, ids, results


@pytest.mark.parametrize("cell", CELLS)
def test_saved_model_in_a_fresh_process_matches_keras(
    cell, tiny_models, served
):
    images, ids, results = served
    outputs, errors = results[cell]
    expected = tiny_models[cell]({"image": images, "sentences": ids})
    logits = np.asarray(expected["logits"])
    labels = logits.argmax(axis=-1)
    top2 = np.sort(logits, axis=-1)[..., -2:]
    # Pixels whose two best logits lie within float noise of each other may
    # flip between eager Keras and the graph; untrained models have logits of
    # very different scales, so "noise" is relative to the largest logit.
    clear = top2[..., 1] - top2[..., 0] > 1e-4 * np.abs(logits).max()
    assert clear.mean() > 0.9
    assert (outputs["labels"] == labels).mean() > 0.99
    assert outputs["labels"].dtype == np.uint8
    np.testing.assert_array_equal(outputs["labels"][clear], labels[clear])
    np.testing.assert_array_equal(
        outputs["colored_image"], editing.colorize_labels(outputs["labels"])
    )
    if "attention_weights" in expected:
        np.testing.assert_allclose(
            outputs["attention_weights"],
            np.asarray(expected["attention_weights"]),
            atol=1e-5,
        )
    else:
        assert "attention_weights" not in outputs
    assert "purple" in errors["unknown"]
    assert "exactly 3 tokens" in errors["length"]


def test_export_replaces_an_earlier_export(small_model, tmp_path):
    first = export_lib.export_model(small_model, tmp_path / "out")
    stamp = os.path.getmtime(first.keras_path)
    os.utime(first.keras_path, (stamp - 100, stamp - 100))
    second = export_lib.export_model(small_model, tmp_path / "out")
    assert os.path.getmtime(second.keras_path) > stamp - 100
    assert os.listdir(tmp_path) == ["out"]


def test_export_refuses_a_directory_with_other_files(small_model, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(errors.OutputError, match="notes.txt"):
        export_lib.export_model(small_model, target)
    assert os.listdir(target) == ["notes.txt"]
    assert os.listdir(tmp_path) == ["out"]


def test_failed_export_leaves_nothing(small_model, tmp_path, monkeypatch):
    def fail(*args):
        raise RuntimeError("disk full")

    # task.json is the last file an export writes.
    monkeypatch.setattr(export_lib.artifacts, "write_json", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_lib.export_model(small_model, tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_failed_re_export_keeps_the_earlier_export(
    small_model, tmp_path, monkeypatch
):
    export_lib.export_model(small_model, tmp_path / "out")

    def fail(*args):
        raise RuntimeError("disk full")

    # task.json is the last file an export writes.
    monkeypatch.setattr(export_lib.artifacts, "write_json", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_lib.export_model(small_model, tmp_path / "out")
    assert os.listdir(tmp_path) == ["out"]
    assert sorted(os.listdir(tmp_path / "out")) == [
        "model.keras",
        "saved_model",
        "task.json",
    ]


def test_export_rejects_what_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="keras.Model or a path"):
        export_lib.export_model(object(), tmp_path / "out")
    with pytest.raises(errors.ModelFileError, match="not found"):
        export_lib.export_model(str(tmp_path / "none.keras"), tmp_path / "o")
    assert os.listdir(tmp_path) == []
