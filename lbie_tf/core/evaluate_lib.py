"""Evaluates a training workdir of any task on its whole test split."""

import os

from lbie_tf.core import artifacts, errors
from lbie_tf.core import task as task_lib

# Workdirs written before `config.task` existed hold CoSaL runs.
LEGACY_TASK = "cosal"


def task_of_config(config):
    """The task a run config names (older configs: LEGACY_TASK)."""
    if "task" not in config:
        with config.unlocked():
            config.task = LEGACY_TASK
    return task_lib.build_task(config)


def evaluate_workdir(workdir, data_dir=None, batch_size=None):
    """Evaluates `<workdir>/model.keras` on the test split of its config.

    Writes `<workdir>/eval.json` and returns its content.
    """
    config = artifacts.read_run_config(workdir)
    if data_dir is not None:
        config.data.data_dir = data_dir
    model_path = os.path.join(workdir, artifacts.MODEL_FILE_NAME)
    if not os.path.isfile(model_path):
        raise errors.ModelFileError(
            f"No trained model at {model_path}; train first with "
            "`python -m experiments.train --workdir=...`."
        )
    task = task_of_config(config)
    model = artifacts.load_model(model_path)
    dataset = task.build_inputs(
        "test",
        training=False,
        batch_size=batch_size or task.config.eval.batch_size,
    )
    results = task.evaluate(model, dataset)
    results.update(task.describe_run())
    results["split"] = "test"
    artifacts.write_json(
        os.path.join(workdir, artifacts.EVAL_FILE_NAME), results
    )
    return results
