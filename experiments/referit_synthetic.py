r"""Trains the offline ReferIt comparison and writes its table.

  python -m experiments.referit_synthetic --workdir=runs/referit_synthetic

Trains (or resumes, or only re-reads a finished run) the LBIE model, Hu et
al.'s baseline and the text-blind LBIE model of
experiments/configs/referit_synthetic.py, each in <workdir>/<model>, and
writes results/referit_synthetic.md and .json with every number and the
command of each row. `--config.x=y` overrides apply to every model.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from experiments import cli  # noqa: E402
from experiments.configs import referit_synthetic  # noqa: E402
from lbie_tf.core import errors  # noqa: E402

MODELS = ("lbie", "hu", "text_blind")
_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/referit_synthetic.py:lbie",
    "The config whose fields --config.x=y overrides are parsed against.",
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "runs/referit_synthetic", "Runs go to <workdir>/<model>."
)
_MODELS = flags.DEFINE_list("models", list(MODELS), "Models to train.")
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", "results", "Where referit_synthetic.md/.json go."
)


def _run(argv):
    if len(argv) > 1:
        raise errors.UsageError(f"unexpected arguments {argv[1:]}.")
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import artifacts, train_lib
    from lbie_tf.referit import table3

    overrides = cli.config_overrides(flags.FLAGS)
    flags_text = " ".join(f"--config.{k}={v}" for k, v in overrides.items())
    rows = []
    for model in _MODELS.value:
        if model not in MODELS:
            raise errors.UsageError(
                f"--models: {model!r} is not one of {list(MODELS)}."
            )
        config = cli.apply_overrides(
            referit_synthetic.get_config(model), overrides
        )
        workdir = os.path.join(_WORKDIR.value, model)
        results = train_lib.train_and_evaluate(config, workdir)
        command = (
            "python -m experiments.train "
            f"--config=experiments/configs/referit_synthetic.py:{model} "
            f"--workdir={workdir} {flags_text}"
        ).strip()
        rows.append({**results, "command": command})
        print(f"{model}: overall_iou {results['overall_iou']:.4f}")
    os.makedirs(_RESULTS_DIR.value, exist_ok=True)
    keys = ("model", "num_pairs", "epochs", "wall_s", "command")
    artifacts.write_json(
        os.path.join(_RESULTS_DIR.value, "referit_synthetic.json"),
        [{k: row[k] for k in keys + table3.SYNTHETIC_KEYS} for row in rows],
    )
    artifacts.write_text(
        os.path.join(_RESULTS_DIR.value, "referit_synthetic.md"),
        table3.synthetic_markdown(rows),
    )


def main(argv):
    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
