r"""The main job (`make demo`): CoSaL build, train, evaluate, export, edit.

  python -m experiments.demo --workdir=runs/demo

Trains section 4.1's model with T = 4 and attention on a CoSaL dataset of
8 direct sentences (10,000 training / 1,000 test images, built locally by
the TFDS builder), evaluates it on the whole test split, exports a .keras
file and a SavedModel, and colours an unseen test image as its sentences
say. Every artefact's path is printed at the end and kept in demo.json.
Change the run with --config (any Table 2 cell) and --config.x=y; it trains
12 epochs unless --config.train.epochs says otherwise.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/cosal.py:paper_t4_attn_d8",
    "Config file and Table 2 cell, e.g. "
    "experiments/configs/cosal.py:original_t4_attn_d8.",
    lock_config=False,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "runs/demo", "Directory for every artefact of the run."
)
_TRAIN_SIZE = flags.DEFINE_integer(
    "train_size", 10_000, "CoSaL training images to build and train on."
)
_TEST_SIZE = flags.DEFINE_integer(
    "test_size", 1_000, "CoSaL test images to build and evaluate on."
)
# The Table 2 cells train the paper family for 24 epochs; half of that keeps
# the demo, install included, under 10 minutes on 2 CPU cores.
DEMO_EPOCHS = 12


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from experiments import cli
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.cosal import demo

    epochs_given = "train.epochs" in cli.config_overrides(flags.FLAGS)
    config = demo.demo_overrides(
        _CONFIG.value,
        _TRAIN_SIZE.value,
        _TEST_SIZE.value,
        epochs=None if epochs_given else DEMO_EPOCHS,
    )
    summary = demo.run_demo(config, _WORKDIR.value)
    print(
        "\nCoSaL demo finished in {total_wall_s:.0f} s.\n"
        "test IoU (9 shapes + background): {iou_shapes:.4f} "
        "(paper Table 2: {paper_iou})\n"
        "test mean IoU (7 colour classes): {miou_colors:.4f}\n"
        "trained model:   {model_keras}\n"
        "metrics:         {eval_json}\n"
        "TensorBoard:     tensorboard --logdir {tensorboard}\n"
        "SavedModel:      {saved_model}\n"
        "example input:   {example_input} (text: {example_text})\n"
        "edited image:    {edited_image}\n"
        "attention:       {explain_image}".format(**summary)
    )


if __name__ == "__main__":
    app.run(main)
