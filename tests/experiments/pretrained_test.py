"""The shipped models in pretrained/: they load, follow the text and edit."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from data_builders.cosal import generator
from lbie_tf.cosal import editing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

# Shipped model -> (direct sentences it was trained on, the least share of
# shape pixels it must colour right on unseen test images).
SHIPPED = {
    "cosal_paper_t4_attn_d8": (8, 0.95),
    "cosal_paper_t4_attn_d4": (4, 0.8),
}


def _shape_pixel_accuracy(model, examples, sentences):
    images = np.stack([e["image"] for e in examples])
    outputs = model({"image": images, "sentences": sentences})
    labels = np.asarray(outputs["logits"]).argmax(-1)
    truth = np.stack([e["color_labels"] for e in examples])
    shape = truth > 0
    return float(np.mean(labels[shape] == truth[shape]))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_colours_unseen_test_images_as_told(name):
    num_direct, least = SHIPPED[name]
    directory = os.path.join(REPO, "pretrained", name)
    with open(os.path.join(directory, "eval.json")) as f:
        recorded = json.load(f)
    assert recorded["num_direct"] == num_direct and recorded["split"] == "test"
    model = editing.load_model(directory)
    # Test-split examples (the builder's seed 0): never seen in training.
    examples = [
        generator.generate_example(
            generator.example_rng(0, "test", index), num_direct
        )
        for index in range(64)
    ]
    sentences = np.stack([e["sentences"] for e in examples])
    accuracy = _shape_pixel_accuracy(model, examples, sentences)
    assert accuracy >= least
    # With another image's sentences the colours are mostly wrong: the
    # model reads the text rather than guessing colours from shapes.
    shuffled = _shape_pixel_accuracy(
        model, examples, np.roll(sentences, 1, axis=0)
    )
    assert shuffled < 0.5 * accuracy


def test_edit_works_with_a_shipped_model(tmp_path):
    example = tmp_path / "example"
    editing.write_example(example, num_direct=4, index=5)
    out = tmp_path / "out.png"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.edit",
            "--model=pretrained/cosal_paper_t4_attn_d4",
            f"--image={example / 'in.png'}",
            f"--text_file={example / 'text.txt'}",
            f"--out={out}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    edited = np.asarray(Image.open(out))
    target = np.asarray(Image.open(example / "target.png"))
    shape = np.asarray(Image.open(example / "in.png")).min(-1) < 128
    assert edited.shape == target.shape
    assert np.mean(np.all(edited == target, -1)[shape]) >= 0.6


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_scores_its_eval_json_on_the_whole_test_split(
    name, tmp_path
):
    """The shipped model, loaded as users load it, gives the numbers its
    eval.json records on the whole 10,000-image test split (within 0.002).

    Example i of a split is drawn from its own random stream, so a build
    with a tiny training split has the registered config's test split.
    """
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import artifacts, evaluate_lib

    directory = os.path.join(REPO, "pretrained", name)
    with open(os.path.join(directory, "eval.json")) as f:
        recorded = json.load(f)
    config = artifacts.read_run_config(directory)
    config.data.data_dir = str(tmp_path)
    config.data.overrides.train_size = 8
    config.data.overrides.test_size = recorded["num_examples"]
    config.data.train_examples = -1
    task = evaluate_lib.task_of_config(config)
    model = editing.load_model(directory)
    dataset = task.build_inputs("test", training=False, batch_size=500)
    results = task.evaluate(model, dataset)
    assert results["num_examples"] == recorded["num_examples"] == 10_000
    for key in ("iou_shapes", "miou_colors"):
        assert abs(results[key] - recorded[key]) <= 0.002, key
