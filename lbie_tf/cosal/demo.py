"""The main job: build CoSaL, train, evaluate, export and edit one image."""

import copy
import os
import time

from lbie_tf.core import artifacts, export_lib, train_lib
from lbie_tf.cosal import editing


def demo_overrides(config, train_size=10_000, test_size=1_000, epochs=None):
    """Shrinks a CoSaL config to the demo's size (a custom builder config)
    and, unless `epochs` is None, its training length; returns a new
    config."""
    config = copy.deepcopy(config)
    config.data.overrides.train_size = train_size
    config.data.overrides.test_size = test_size
    config.data.train_examples = -1
    if epochs is not None:
        config.train.epochs = epochs
    return config


def run_demo(config, workdir, example_index=0):
    """Runs the whole CoSaL pipeline and returns the artefact paths.

    Steps: build the configured CoSaL dataset (TFDS), train and evaluate on
    its whole test split (`train_lib.train_and_evaluate`), export a .keras
    file and a SavedModel, write a test-split example (silhouettes and
    sentences the model has not seen) and colour it as its text says, with
    the attention picture beside it.

    Returns:
      A dict of artefact paths and the test metrics, also written to
      `<workdir>/demo.json`.
    """
    start = time.perf_counter()
    workdir = os.path.abspath(os.path.expanduser(workdir))
    results = train_lib.train_and_evaluate(config, workdir)
    exported = export_lib.export_model(
        os.path.join(workdir, "model.keras"), os.path.join(workdir, "export")
    )
    example_dir = os.path.join(workdir, "example")
    num_direct = int(config.data.name.split("_")[1])
    image_path, text_path, target_path = editing.write_example(
        example_dir,
        num_direct=num_direct,
        index=example_index,
        seed=config.data.overrides.seed or 0,
    )
    with open(text_path) as file:
        text = ". ".join(line.strip() for line in file if line.strip())
    edited = editing.edit(
        exported.keras_path,
        image_path,
        text,
        os.path.join(example_dir, "edited.png"),
        explain_path=os.path.join(example_dir, "explain.png"),
        scale=4,
    )
    summary = {
        "iou_shapes": results["iou_shapes"],
        "miou_colors": results["miou_colors"],
        "paper_iou": results["paper_iou"],
        "train_wall_s": results["wall_s"],
        "total_wall_s": round(time.perf_counter() - start, 1),
        "workdir": workdir,
        "model_keras": os.path.join(workdir, "model.keras"),
        "eval_json": os.path.join(workdir, "eval.json"),
        "tensorboard": os.path.join(workdir, "tensorboard"),
        "export_dir": exported.export_dir,
        "saved_model": exported.saved_model_dir,
        "example_input": image_path,
        "example_text": text_path,
        "example_target": target_path,
        "edited_image": edited.out_path,
        "explain_image": edited.explain_path,
    }
    artifacts.write_json(os.path.join(workdir, "demo.json"), summary)
    return summary
