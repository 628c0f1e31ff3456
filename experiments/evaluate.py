"""Evaluates a training workdir of any task on its whole test split.

  python -m experiments.evaluate --workdir=runs/paper_t4_attn_d8

Reads the workdir's config.json (its `task`) and model.keras; prints the
task's numbers and writes them to <workdir>/eval.json.
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
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import artifacts, evaluate_lib

    if not flags.FLAGS["verbosity"].present:
        # TFDS logs INFO lines (dataset folders, deprecations) through absl;
        # --verbosity=0 shows them again.
        logging.set_verbosity(logging.WARNING)
    results = evaluate_lib.evaluate_workdir(
        _WORKDIR.value, data_dir=_DATA_DIR.value, batch_size=_BATCH_SIZE.value
    )
    task = evaluate_lib.task_of_config(
        artifacts.read_run_config(_WORKDIR.value)
    )
    print(
        f"test {task.headline(results)} on {results['num_examples']} "
        "examples\n"
        f"written: {os.path.join(_WORKDIR.value, 'eval.json')}"
    )


def main(argv):
    from experiments import cli

    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
