"""Test helper: one training process of distribute_test, reporting as JSON.

  python tests/lbie_tf/core/distributed_run.py '<spec JSON>'

spec: mode ("train" or "keras_canary"), result (where the JSON report
goes) and, for "train": cell, data_dir, workdir, strategy, num_cpu_devices,
epochs, keep_model (where a non-chief worker's model.keras is copied
before its temporary directory is removed). Multi-worker runs read
TF_CONFIG. The instrumentation (a loss recorder added to every `fit`, a
look at the worker directory before it goes) is test-only patching here,
so that train_lib runs unchanged.
"""

import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(__file__, *[".."] * 4)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


class LossRecorder(keras.callbacks.Callback):
    """Every batch's `loss` log (the epoch's running mean so far)."""

    def __init__(self, losses):
        super().__init__()
        self.losses = losses

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def train(spec):
    from experiments.configs import cosal_smoke
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import distribute, train_lib

    config = cosal_smoke.get_config(spec["cell"])
    config.data.data_dir = spec["data_dir"]
    config.train.epochs = spec["epochs"]
    config.train.eval_every_epochs = spec["epochs"]
    config.runtime.strategy = spec["strategy"]
    config.runtime.num_cpu_devices = spec.get("num_cpu_devices", 0)
    report = {"pid": os.getpid(), "losses": []}

    fit = keras.Model.fit

    def recording_fit(self, *args, callbacks=None, **kwargs):
        callbacks = [*(callbacks or []), LossRecorder(report["losses"])]
        return fit(self, *args, callbacks=callbacks, **kwargs)

    keras.Model.fit = recording_fit
    remove = distribute.remove_worker_dir

    def inspecting_remove(directory, chief):
        report["chief"] = chief
        report["out_dir"] = directory
        report["out_dir_entries"] = sorted(os.listdir(directory))
        if not chief and spec.get("keep_model"):
            shutil.copy(
                os.path.join(directory, "model.keras"), spec["keep_model"]
            )
        remove(directory, chief)

    distribute.remove_worker_dir = inspecting_remove
    results = train_lib.train_and_evaluate(config, spec["workdir"])
    report["eval"] = {
        key: value
        for key, value in results.items()
        if key in ("iou_shapes", "miou_colors", "num_examples", "replicas")
    }
    return report


def _tiny_model():
    inputs = {
        "a": keras.Input((3,), name="a"),
        "b": keras.Input((2,), name="b"),
    }
    joined = keras.layers.Concatenate()([inputs["a"], inputs["b"]])
    model = keras.Model(inputs, keras.layers.Dense(1)(joined))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _tiny_dataset(strategy):
    def dataset_fn(input_context):
        features = {"a": tf.ones((8, 3)), "b": tf.ones((8, 2))}
        data = tf.data.Dataset.from_tensor_slices((features, tf.ones((8, 1))))
        return data.batch(input_context.get_per_replica_batch_size(4))

    return strategy.distribute_datasets_from_function(dataset_fn)


def keras_canary(spec):
    """Which of the two Keras failures that multi_worker_fix works around
    still happen: fit with no fix, with only the symbolic-build half, and
    with the whole fix (which must train)."""
    import types

    from lbie_tf.core import multi_worker_fix

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    report = {"needed": multi_worker_fix.needed(strategy)}
    for variant in ("none", "symbolic_build", "whole"):
        with strategy.scope():
            model = _tiny_model()
        if variant == "symbolic_build":
            model._maybe_symbolic_build = types.MethodType(
                multi_worker_fix._maybe_symbolic_build, model
            )
        elif variant == "whole":
            multi_worker_fix.apply(model, strategy)
        try:
            history = model.fit(_tiny_dataset(strategy), epochs=1, verbose=0)
            report[variant] = {"loss": history.history["loss"]}
        except Exception as error:  # noqa: BLE001 - reported, not hidden.
            report[variant] = {"error": f"{type(error).__name__}: {error}"}
    return report


def main():
    spec = json.loads(sys.argv[1])
    report = {"train": train, "keras_canary": keras_canary}[spec["mode"]](spec)
    with open(spec["result"], "w", encoding="utf-8") as file:
        json.dump(report, file, default=float)


if __name__ == "__main__":
    main()
