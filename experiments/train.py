r"""Trains and evaluates any task's model: a thin main over the core's
train_lib (`config.task` names the task).

  python -m experiments.train \
      --config=experiments/configs/cosal.py:paper_t4_attn_d8 \
      --workdir=runs/paper_t4_attn_d8 [--config.train.epochs=3 ...]

Writes config.json, backup/, tensorboard/, model.keras and eval.json into
the workdir; a rerun with the same workdir resumes exactly where the last
backup left off (`--config.train.backup_every_steps`). Train on several
devices with --config.runtime.strategy=mirrored or multi_worker (BUILD.md).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/cosal.py",
    "Training config file, optionally with a Table 2 cell after ':' "
    "(e.g. experiments/configs/cosal.py:original_t4_attn_d4). Override "
    "fields with --config.<field>=<value>.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for the run's artefacts.", required=True
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from lbie_tf.core import runtime

    runtime.import_tensorflow_quietly()
    from experiments import cli
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib
    from lbie_tf.core import train_lib

    task = cli.exit_on_user_error(task_lib.build_task, _CONFIG.value)
    results = cli.exit_on_user_error(
        train_lib.train_and_evaluate, _CONFIG.value, _WORKDIR.value
    )
    workdir = os.path.abspath(_WORKDIR.value)
    print(
        f"test {task.headline(results)}, {results['wall_s']:.0f} s\n"
        f"model: {os.path.join(workdir, 'model.keras')}\n"
        f"metrics: {os.path.join(workdir, 'eval.json')}\n"
        f"tensorboard --logdir {os.path.join(workdir, 'tensorboard')}"
    )


if __name__ == "__main__":
    app.run(main)
