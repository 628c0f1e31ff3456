"""Benchmarks CoSaL training: images/s per model, input pipeline, time to IoU.

  python -m benchmarks.cosal_train                  # a few minutes
  python -m benchmarks.cosal_train --time_to_iou    # + paper T=4 / 8 direct
                                                    #   until the paper's IoU

Prints one JSON object: for each model its training images/s and step time
(fixed batch, after warm-up), the input pipeline's images/s alone (cached
training pipeline) and its ratio to the fastest model's consumption, the
training time the paper model (T = 4, 8 direct) needs to reach the paper's
IoU (with --time_to_iou), and the peak resident memory.
"""

import importlib.util
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

_CONFIG_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "experiments",
    "configs",
    "cosal.py",
)

_CELLS = flags.DEFINE_list(
    "cells",
    [
        "paper_t1_noattn_d8",
        "paper_t1_attn_d8",
        "paper_t4_attn_d8",
        "original_t1_attn_d8",
        "original_t4_attn_d8",
    ],
    "Table 2 cells whose model is timed.",
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Training batch size.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed training steps per model.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", "~/tensorflow_datasets", "tfds data directory."
)
_DATA = flags.DEFINE_string(
    "data", "direct_8", "CoSaL builder config for the pipeline and IoU runs."
)
_TIME_TO_IOU = flags.DEFINE_bool(
    "time_to_iou",
    False,
    "Also train paper_t4_attn_d8 until the test IoU reaches the paper's.",
)
_MAX_MINUTES = flags.DEFINE_float(
    "max_minutes", 20.0, "Training time limit of the --time_to_iou run."
)


def _config(cell):
    # Configs are code loaded by path, as `--config=FILE:cell` loads them
    # for the entry points; benchmarks never import experiments.
    spec = importlib.util.spec_from_file_location("cosal_config", _CONFIG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(cell)
    config.data.name = _DATA.value
    config.data.data_dir = _DATA_DIR.value
    config.train.batch_size = _BATCH_SIZE.value
    return config


def _task(config):
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    return task_lib.build_task(config)


def time_pipeline(config, num_batches=200):
    """Images/s of the cached, shuffled training pipeline alone (the
    pipeline `fit` reads: (inputs, targets) with every label map)."""
    from lbie_tf.cosal import input_pipeline

    task = _task(config)
    builder = task.prepare_data()
    examples = input_pipeline.read_split(
        builder, "train", task.num_examples("train")
    )
    train = input_pipeline.training_epochs(
        examples, config.train.batch_size, 0, 1000
    )
    for _ in train.take(task.num_examples("train") // config.train.batch_size):
        pass  # The first epoch fills the cache.
    count, start = 0, time.perf_counter()
    for _ in train.take(num_batches):
        count += 1
    elapsed = time.perf_counter() - start
    return count * config.train.batch_size / elapsed, train


def time_model(config, batch, steps):
    """(images/s, seconds per step) of model.fit steps on a fixed batch."""
    from lbie_tf.cosal import models

    task = _task(config)
    model = task.compile(task.build_model(), steps_per_epoch=steps + 2)
    inputs, targets = batch
    key = models.target_output(config.model)
    labels = {key: targets["color_labels"]}
    for _ in range(2):
        model.train_on_batch(inputs, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, labels)
    step_s = (time.perf_counter() - start) / steps
    return len(inputs["image"]) / step_s, step_s


def time_to_iou(config, max_minutes):
    """Training seconds until the test IoU reaches the paper's number."""
    task = _task(config)
    train_images = task.num_examples("train")
    steps_per_epoch = train_images // config.train.batch_size
    model = task.compile(
        task.build_model(training_steps=config.train.epochs * steps_per_epoch),
        steps_per_epoch=steps_per_epoch,
    )
    test = task.build_inputs(
        "test", training=False, batch_size=config.eval.batch_size
    )
    trained_s, history, epoch = 0.0, [], 0
    while trained_s < 60 * max_minutes:
        train = task.build_inputs(
            "train",
            training=True,
            batch_size=config.train.batch_size,
            first_epoch=epoch,
        )
        start = time.perf_counter()
        model.fit(train, epochs=1, verbose=0)
        trained_s += time.perf_counter() - start
        epoch += 1
        results = task.evaluate(model, test)
        history.append((round(trained_s, 1), round(results["iou_shapes"], 4)))
        if results["iou_shapes"] >= config.paper_iou:
            return trained_s, history, train_images
    return None, history, train_images


def main(argv):
    del argv
    result = {"batch_size": _BATCH_SIZE.value, "data": _DATA.value}
    first = _config(_CELLS.value[0])
    pipeline_rate, train = time_pipeline(first)
    batch = next(iter(train))
    result["input_pipeline_images_per_s"] = round(pipeline_rate, 1)
    models = {}
    for cell in _CELLS.value:
        rate, step_s = time_model(_config(cell), batch, _STEPS.value)
        models[cell] = {
            "train_images_per_s": round(rate, 1),
            "step_s": round(step_s, 4),
        }
    result["models"] = models
    fastest = max(m["train_images_per_s"] for m in models.values())
    result["pipeline_over_fastest_training"] = round(pipeline_rate / fastest, 1)
    if _TIME_TO_IOU.value:
        config = _config("paper_t4_attn_d8")
        seconds, history, train_images = time_to_iou(config, _MAX_MINUTES.value)
        result["time_to_paper_iou"] = {
            "cell": "paper_t4_attn_d8",
            "paper_iou": config.paper_iou,
            "train_s": None if seconds is None else round(seconds, 1),
            "train_images_per_epoch": train_images,
            "history_train_s_iou": history,
        }
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_rss_mb"] = round(peak_kb / 1024, 1)
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
