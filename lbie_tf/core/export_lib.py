"""Exports a model of any task: a .keras file, a self-contained SavedModel
and task.json, written atomically."""

import dataclasses
import os

from lbie_tf.core import artifacts, evaluate_lib, runtime
from lbie_tf.core import task as task_lib

SAVED_MODEL_DIR_NAME = "saved_model"
# What a previous export leaves in its directory; only a directory holding
# nothing else may be replaced, so an export never deletes unrelated files.
EXPORT_ENTRIES = frozenset(
    {
        artifacts.MODEL_FILE_NAME,
        SAVED_MODEL_DIR_NAME,
        artifacts.TASK_FILE_NAME,
        artifacts.CONFIG_FILE_NAME,
    }
)


@dataclasses.dataclass(frozen=True)
class ExportPaths:
    """Where `export_model` put each artefact."""

    export_dir: str
    keras_path: str
    saved_model_dir: str
    task_path: str


def _task_and_model(model_or_path, config, task_name):
    _, keras = runtime.import_tensorflow_quietly()

    if isinstance(model_or_path, (str, os.PathLike)):
        model_path = artifacts.resolve_model_path(model_or_path)
        config_path = os.path.join(
            os.path.dirname(model_path), artifacts.CONFIG_FILE_NAME
        )
        if config is None and os.path.isfile(config_path):
            config = artifacts.read_run_config(os.path.dirname(model_path))
    if config is not None:
        task = evaluate_lib.task_of_config(config)
    else:
        task = task_lib.get_task_class(
            task_name or task_lib.legacy_task_name()
        )()
    if isinstance(model_or_path, (str, os.PathLike)):
        model = task.load_model(model_path)
    elif isinstance(model_or_path, keras.Model):
        model = model_or_path
    else:
        raise ValueError(
            "model_or_path must be a keras.Model or a path; received "
            f"{type(model_or_path).__name__}."
        )
    return task, model, config


def export_model(model_or_path, export_dir, config=None, task_name=None):
    """Writes `<export_dir>/model.keras`, `saved_model/` and `task.json`.

    The task comes from `config`, else from the config.json beside a model
    path (a training workdir or an earlier export), else from `task_name`
    (default: the registry's legacy task). Its `build_serving` gives the
    signatures, the first of which is `serving_default`. task.json names the
    task and the signatures, so that edit and serve read the task from the
    export.

    Everything is written to a staging directory beside `export_dir` and
    renamed into place at the end, so a failed export leaves no partial
    directory. An existing `export_dir` is replaced only if it is empty or
    holds nothing but an earlier export.

    Returns:
      An `ExportPaths`.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    with artifacts.staged_directory(export_dir, EXPORT_ENTRIES) as staging:
        task, model, config = _task_and_model(model_or_path, config, task_name)
        _, keras = runtime.import_tensorflow_quietly()

        model.save(os.path.join(staging, artifacts.MODEL_FILE_NAME))
        endpoints, resources = task.build_serving(model)
        archive = keras.export.ExportArchive()
        archive.track(model)
        for resource in resources:
            archive.track(resource)
        for endpoint in endpoints:
            archive.add_endpoint(
                name=endpoint.name,
                fn=endpoint.function,
                input_signature=endpoint.input_signature,
            )
        archive.write_out(
            os.path.join(staging, SAVED_MODEL_DIR_NAME), verbose=False
        )
        if config is not None:
            artifacts.write_json(
                os.path.join(staging, artifacts.CONFIG_FILE_NAME),
                config.to_dict(),
            )
        artifacts.write_json(
            os.path.join(staging, artifacts.TASK_FILE_NAME),
            {
                "task": task.name,
                "signatures": {
                    endpoint.name: [
                        spec.name for spec in endpoint.input_signature
                    ]
                    for endpoint in endpoints
                },
            },
        )
    return ExportPaths(
        export_dir=export_dir,
        keras_path=os.path.join(export_dir, artifacts.MODEL_FILE_NAME),
        saved_model_dir=os.path.join(export_dir, SAVED_MODEL_DIR_NAME),
        task_path=os.path.join(export_dir, artifacts.TASK_FILE_NAME),
    )


def read_task_name(export_dir):
    """The task an export holds, from its task.json."""
    path = os.path.join(os.fspath(export_dir), artifacts.TASK_FILE_NAME)
    return artifacts.read_json(path, "export task file")["task"]
