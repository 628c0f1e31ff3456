r"""Trains the released no-attention CoSaL cell with one part swapped.

  python -m experiments.diagnostics.hybrid_ablation --variant=paper_head \
      --workdir=runs/ablation/hybrid_paper_head --config.train.epochs=4 \
      --config.train.eval_every_epochs=2 --config.train.verbose=2

Each variant sets config keys of the cell (default
`experiments/configs/cosal.py:original_t1_noattn_d8`) and trains and
evaluates it through the project's training loop, writing the usual workdir
(eval.json has the IoUs and the text sensitivity):

  released_decoder  `model.decoder="deconv"`: the released code's decoder,
                    four 4x4 stride-2 deconvolutions with convs between
                    (the model the ablation starts from).
  paper_head        `model.decoder="classifier_upsampling"`: the paper's head
                    (section 4.1: 1x1 conv 16 + ReLU, 1x1 conv to the
                    classes, a bilinear-initialised deconvolution, here
                    kernel 32 and stride 16 from the 3 x 3 map), the rest of
                    the released model unchanged (DEVIATIONS.md point 14).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

# Variant -> {dotted config field: value}.
VARIANTS = {
    "released_decoder": {"model.decoder": "deconv"},
    "paper_head": {"model.decoder": "classifier_upsampling"},
}


def ablate(config, variant, workdir):
    """Sets `variant`'s config fields on `config`, then trains and evaluates
    it in `workdir`; returns eval.json's content."""
    from experiments import cli
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import train_lib

    cli.apply_overrides(config, VARIANTS[variant])
    return train_lib.train_and_evaluate(config, workdir)


def define_flags():
    """Defines the command's flags; only when it runs, so that tests can
    import this module beside other commands that define --config."""
    config = config_flags.DEFINE_config_file(
        "config",
        "experiments/configs/cosal.py:original_t1_noattn_d8",
        "Training config of the cell to ablate; override fields with "
        "--config.<field>=<value>.",
        lock_config=True,
    )
    variant = flags.DEFINE_enum(
        "variant", "paper_head", sorted(VARIANTS), "The part to swap."
    )
    workdir = flags.DEFINE_string(
        "workdir", None, "Directory for the run's artefacts.", required=True
    )
    return config, variant, workdir


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from experiments import cli
    from lbie_tf.core import runtime

    runtime.import_tensorflow_quietly()
    results = cli.exit_on_user_error(
        ablate, _CONFIG.value, _VARIANT.value, _WORKDIR.value
    )
    print(
        f"{_VARIANT.value}: iou_shapes {results['iou_shapes']:.4f}, "
        f"miou_colors {results['miou_colors']:.4f}, text sensitivity "
        f"{results['text_sensitivity']:.3f}; "
        f"{os.path.join(os.path.abspath(_WORKDIR.value), 'eval.json')}"
    )


if __name__ == "__main__":
    _CONFIG, _VARIANT, _WORKDIR = define_flags()
    app.run(main)
