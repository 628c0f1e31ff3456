"""Evaluates a training workdir of any task on its whole test split."""

import os

from lbie_tf.core import artifacts, errors
from lbie_tf.core import task as task_lib


def task_of_config(config):
    """The task a run config names (older configs: the legacy task)."""
    if "task" not in config:
        with config.unlocked():
            config.task = task_lib.legacy_task_name()
    return task_lib.build_task(config)


def task_name_of(path, default=None):
    """The task of a model path, read without loading anything.

    An export's task.json names it; a training workdir's (or a shipped
    model's) config.json names it in `task` (the registry's legacy task when
    the config predates that field); a bare .keras file says nothing:
    `default`.

    Raises:
      UsageError: when nothing names the task and `default` is None.
    """
    path = os.fspath(path)
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    task_file = os.path.join(directory, artifacts.TASK_FILE_NAME)
    config_file = os.path.join(directory, artifacts.CONFIG_FILE_NAME)
    if os.path.isfile(task_file):
        return artifacts.read_json(task_file, "export task file")["task"]
    if os.path.isfile(config_file):
        config = artifacts.read_json(config_file, "training config")
        return config.get("task") or task_lib.legacy_task_name()
    if default is None:
        raise errors.UsageError(
            f"{path!r} does not say which task its model is for (no "
            f"{artifacts.TASK_FILE_NAME} or {artifacts.CONFIG_FILE_NAME} "
            "beside it); pass --task."
        )
    return default


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
    model = task.load_model(model_path)
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
