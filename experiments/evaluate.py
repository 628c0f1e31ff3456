"""Evaluates a trained CoSaL workdir on the whole test split (eval.json).

  python -m experiments.evaluate --workdir=runs/paper_t4_attn_d8

Reads the workdir's config.json and model.keras; prints and writes both
IoUs to <workdir>/eval.json.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

_WORKDIR = flags.DEFINE_string(
    "workdir",
    None,
    "A training workdir (config.json + model.keras).",
    required=True,
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Override the config's tfds data_dir."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", None, "Override the config's eval batch size."
)


def _run(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from lbie_tf import evaluate_lib

    if not flags.FLAGS["verbosity"].present:
        # TFDS logs INFO lines (dataset folders, deprecations) through absl;
        # --verbosity=0 shows them again.
        logging.set_verbosity(logging.WARNING)
    results = evaluate_lib.evaluate_workdir(
        _WORKDIR.value, data_dir=_DATA_DIR.value, batch_size=_BATCH_SIZE.value
    )
    print(
        f"test iou_shapes {results['iou_shapes']:.4f} "
        f"(paper {results['paper_iou']}), miou_colors "
        f"{results['miou_colors']:.4f} on {results['num_examples']} images\n"
        f"written: {os.path.join(_WORKDIR.value, 'eval.json')}"
    )


def main(argv):
    from lbie_tf import cli_errors

    cli_errors.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
