"""An export's SavedModel signatures, loaded with `tf.saved_model.load`
and called with numpy arrays; a refused call is one line of error."""

import os
import re

import numpy as np

from lbie_tf.core import artifacts, errors, export_lib, rest_json

SAVED_MODEL_DIR_NAME = export_lib.SAVED_MODEL_DIR_NAME


class SignatureError(Exception):
    """A signature refused its inputs (TensorFlow's InvalidArgumentError);
    the message is one line without TensorFlow's node and stack lines."""


def signature_error_message(message):
    """The part of an InvalidArgumentError message that says what is wrong,
    as one line: without "Graph execution error", the node it was detected
    at, stack lines and the `[[{{node ...}}]] [Op:...]` suffix, and an
    assertion's first data item without its brackets."""
    kept = []
    for line in str(message).splitlines():
        stripped = line.strip()
        if stripped.startswith("[[") or stripped.startswith("[Op:"):
            break
        if not stripped or stripped.startswith(
            (
                "Graph execution error",
                "Detected at node",
                "<stack traces",
                'File "',
            )
        ):
            continue
        kept.append(stripped)
    text = " ".join(kept) or errors.one_line(message)
    text = re.sub(r"\s*\[\[\{\{node [^]]*\}\}\]\].*$", "", text)
    text = re.sub(r"\s*\[Op:[^]]*\]$", "", text)
    prefix = "assertion failed: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
        # tf.debugging.Assert prints each data item in brackets; the first
        # is the sentence, the others are tensors and stay bracketed.
        if text.startswith("["):
            end = text.find("] [")
            if end < 0 and text.endswith("]"):
                end = len(text) - 1
            if end > 0:
                text = text[1:end] + text[end + 1 :]
    text = text.replace("\\'", "'").replace('\\"', '"')
    return rest_json.shorten(errors.one_line(text))


def _tensor_info(tf, spec):
    if spec.dtype == tf.string:
        dtype = "string"
    else:
        dtype = np.dtype(spec.dtype.as_numpy_dtype).name
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else ()
    return rest_json.TensorInfo(dtype=dtype, shape=shape)


def read_export(export_dir):
    """The task name and {signature: [input names]} of an export's
    task.json, checked without importing TensorFlow.

    Raises:
      ModelFileError: if `export_dir` is not an export directory.
    """
    export_dir = os.fspath(export_dir)
    accepted = (
        "pass an export directory written by `python -m experiments.export` "
        f"(it holds {artifacts.TASK_FILE_NAME} and {SAVED_MODEL_DIR_NAME}/)"
    )
    if not os.path.isdir(export_dir):
        raise errors.ModelFileError(
            f"--model={export_dir!r} is not a directory; {accepted}."
        )
    task_path = os.path.join(export_dir, artifacts.TASK_FILE_NAME)
    saved_model = os.path.join(export_dir, SAVED_MODEL_DIR_NAME)
    if not os.path.isfile(task_path) or not os.path.isfile(
        os.path.join(saved_model, "saved_model.pb")
    ):
        raise errors.ModelFileError(
            f"{export_dir!r} is not an export: it lacks "
            f"{artifacts.TASK_FILE_NAME} or {SAVED_MODEL_DIR_NAME}/"
            f"saved_model.pb; {accepted}."
        )
    task = artifacts.read_json(task_path, "export task file")
    if (
        not isinstance(task, dict)
        or not isinstance(task.get("task"), str)
        or not isinstance(task.get("signatures"), dict)
    ):
        raise errors.ModelFileError(
            f"export task file {task_path!r} does not name the task and its "
            "signatures; export the model again."
        )
    return task["task"], task["signatures"]


def _signature_defs_json(saved_model_dir):
    """The SignatureDefMap of saved_model.pb as TF Serving's metadata API
    writes it (protobuf's JSON mapping)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as file:
        model.ParseFromString(file.read())
    signature_defs = model.meta_graphs[0].signature_def
    return {
        name: json_format.MessageToDict(
            signature_defs[name],
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
        for name in sorted(signature_defs)
        if not name.startswith("__")
    }


class SavedModelSignatures:
    """The signatures of an export's SavedModel, loaded with
    `tf.saved_model.load` and called through their tf.functions (no
    Keras): `call(name, inputs)` takes and returns {name: numpy array}.

    Args:
      export_dir: an export directory (`read_export`).
      intra_op_threads, inter_op_threads: TensorFlow's thread pools (0:
        TensorFlow's choice, one thread per core each). They can only be
        set before TensorFlow runs its first op in the process.
    """

    def __init__(self, export_dir, intra_op_threads=0, inter_op_threads=0):
        self.task_name, input_names = read_export(export_dir)
        saved_model_dir = os.path.join(export_dir, SAVED_MODEL_DIR_NAME)
        from lbie_tf.core import runtime

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with runtime.native_stderr_silenced():
            import tensorflow as tf
        self._tf = tf
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(
                intra_op_threads
            )
        if inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(
                inter_op_threads
            )
        # Loaded only to run: no Keras objects, no training state.
        self._loaded = tf.saved_model.load(saved_model_dir)
        self._functions = dict(self._loaded.signatures)
        self.signatures = {}
        for name, function in self._functions.items():
            inputs = function.structured_input_signature[1]
            outputs = function.structured_outputs
            # In task.json's order (the functions' dicts have none).
            order = [k for k in input_names.get(name, ()) if k in inputs]
            order += sorted(set(inputs) - set(order))
            self.signatures[name] = rest_json.SignatureInfo(
                inputs={k: _tensor_info(tf, inputs[k]) for k in order},
                outputs={k: _tensor_info(tf, v) for k, v in outputs.items()},
            )
        self.signature_defs = _signature_defs_json(saved_model_dir)

    def call(self, name, inputs):
        tf = self._tf
        function = self._functions[name]
        try:
            outputs = function(
                **{key: tf.constant(value) for key, value in inputs.items()}
            )
        except tf.errors.InvalidArgumentError as error:
            raise SignatureError(
                signature_error_message(error.message)
            ) from None
        return {key: value.numpy() for key, value in outputs.items()}
