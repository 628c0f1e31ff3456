"""Times one model under one oneDNN setting in its own process (JSON out).

  TF_ENABLE_ONEDNN_OPTS=0 python -m benchmarks.bench_worker \
      --model=cosal/paper_t4 --data_dir=/tmp/bench_data --out=variant.json

`benchmarks.bench` starts one such process per (model, oneDNN setting),
since TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it is imported. In
the process: the roofline probe (`benchmarks.roofline`), the model's dense
FLOPs per image (`benchmarks.flops`), training steps with XLA off and on
(`train.jit_compile`, through `task.compile` and `train_on_batch` on one
cached batch, the variants' rounds interleaved so that a change in the
machine's load hits both), batch-1 latency and batch-64 (the row's
throughput batch) throughput of the Keras model and of the exported
SavedModel's `serving_default`, the input pipeline's images/s, and the
process's peak RSS.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import bench_models, machine  # noqa: E402

# (warm-up steps, rounds, steps per round) of training; calls of inference.
FULL = {
    "train": (3, 4, 5),
    "batch1_calls": 30,
    "throughput_calls": 5,
    "pipeline_epochs": 12,
}
QUICK = {
    "train": (1, 1, 2),
    "batch1_calls": 3,
    "throughput_calls": 1,
    "pipeline_epochs": 2,
}


def _summary_ms(seconds):
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    return {
        "median_ms": round(1e3 * statistics.median(ordered), 3),
        "p95_ms": round(1e3 * p95, 3),
        "min_ms": round(1e3 * ordered[0], 3),
        "calls": len(ordered),
    }


def _resize_batch(tf, structure, size):
    """Every tensor of `structure` cut or tiled to `size` rows."""

    def resize(x):
        x = tf.convert_to_tensor(x)
        rows = int(x.shape[0])
        if rows < size:
            x = tf.tile(x, [-(-size // rows)] + [1] * (x.shape.rank - 1))
        return x[:size]

    return tf.nest.map_structure(resize, structure)


def _timed_calls(function, calls, warmup=2):
    for _ in range(warmup):
        function()
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def _materialize(tf, outputs):
    # Pull every output to the host, as a server answering a request does.
    for value in tf.nest.flatten(outputs):
        if hasattr(value, "numpy"):
            value.numpy()


def _first_batch(task, batch_size):
    dataset = task.build_inputs("train", training=True, batch_size=batch_size)
    return next(iter(dataset))


def time_training(tf, task_lib, config, batch, jit_variants, sizes):
    """Images/s per XLA setting: warm-up, then interleaved rounds of
    `train_on_batch` on one in-memory batch; the fastest round counts (the
    median is kept beside it)."""
    warmup, rounds, steps = sizes
    inputs, targets = batch
    images = int(tf.nest.flatten(inputs)[0].shape[0])
    variants, initial_weights = {}, None
    for jit in jit_variants:
        variant_config = config.copy_and_resolve_references()
        variant_config.train.jit_compile = jit
        task = task_lib.build_task(variant_config)
        model = task.build_model(training_steps=100_000)
        # Every variant starts from the same weights, so that their first
        # losses agree if XLA computes what the graph does.
        if initial_weights is None:
            initial_weights = model.get_weights()
        else:
            model.set_weights(initial_weights)
        model = task.compile(model, steps_per_epoch=10_000)
        start = time.perf_counter()
        logs = model.train_on_batch(inputs, targets, return_dict=True)
        first_step_s = time.perf_counter() - start
        first_loss = float(logs["loss"])
        for _ in range(warmup - 1):
            model.train_on_batch(inputs, targets)
        variants[jit] = {
            "model": model,
            "first_step_s": first_step_s,
            "first_loss": first_loss,
            "round_step_s": [],
        }
    for _ in range(rounds):
        for variant in variants.values():
            model = variant["model"]
            start = time.perf_counter()
            for _ in range(steps):
                logs = model.train_on_batch(inputs, targets, return_dict=True)
            float(logs["loss"])
            variant["round_step_s"].append(
                (time.perf_counter() - start) / steps
            )
            variant["last_loss"] = float(logs["loss"])
    results = {}
    for jit, variant in variants.items():
        # The fastest round is the headline (another process's load only
        # ever slows a round down); the median is kept beside it.
        best_s = min(variant["round_step_s"])
        median_s = statistics.median(variant["round_step_s"])
        results["xla_on" if jit else "xla_off"] = {
            "images_per_s": round(images / best_s, 2),
            "median_images_per_s": round(images / median_s, 2),
            "step_ms": round(1e3 * best_s, 3),
            "round_step_ms": [
                round(1e3 * s, 3) for s in variant["round_step_s"]
            ],
            "first_step_s": round(variant["first_step_s"], 2),
            "first_loss": variant["first_loss"],
            "last_loss": variant["last_loss"],
        }
    results["batch_size"] = images
    results["warmup_steps"] = warmup
    results["rounds"] = rounds
    results["steps_per_round"] = steps
    return results


def _throughput(seconds, batch_size):
    return {
        "batch_size": batch_size,
        "images_per_s": round(batch_size / statistics.median(seconds), 2),
        **_summary_ms(seconds),
    }


def time_keras(model, batch_one, batch_many, sizes):
    """Batch-1 latency and batch-N throughput of `predict_on_batch`
    (`batch_many` None: latency only)."""
    result = {
        "batch1": _summary_ms(
            _timed_calls(
                lambda: model.predict_on_batch(batch_one),
                sizes["batch1_calls"],
            )
        )
    }
    if batch_many is not None:
        import tensorflow as tf

        rows = int(tf.nest.flatten(batch_many)[0].shape[0])
        result["throughput"] = _throughput(
            _timed_calls(
                lambda: model.predict_on_batch(batch_many),
                sizes["throughput_calls"],
                1,
            ),
            rows,
        )
    return result


def time_saved_model(tf, task, model, config, sizes, throughput_batch):
    """Exports through export_lib into a temporary directory and times the
    reloaded `serving_default` signature at batch 1 and `throughput_batch`
    (the task's `serving_examples` request, repeated)."""
    import numpy as np

    from lbie_tf.core import export_lib

    with tempfile.TemporaryDirectory(prefix="bench_export_") as directory:
        start = time.perf_counter()
        paths = export_lib.export_model(
            model, os.path.join(directory, "export"), config=config
        )
        export_s = time.perf_counter() - start
        loaded = tf.saved_model.load(paths.saved_model_dir)
        signature = loaded.signatures["serving_default"]
        request = task.serving_examples()["serving_default"]

        def requests(size):
            return {
                name: tf.constant(np.repeat(np.asarray(value), size, axis=0))
                for name, value in request.items()
            }

        one = requests(1)
        result = {
            "export_s": round(export_s, 2),
            "batch1": _summary_ms(
                _timed_calls(
                    lambda: _materialize(tf, signature(**one)),
                    sizes["batch1_calls"],
                )
            ),
        }
        if throughput_batch:
            many = requests(throughput_batch)
            result["throughput"] = _throughput(
                _timed_calls(
                    lambda: _materialize(tf, signature(**many)),
                    sizes["throughput_calls"],
                    1,
                ),
                throughput_batch,
            )
    return result


def time_pipeline(task, batch_size, epochs):
    """Images/s of `task.build_inputs` for training after its first epoch
    (which fills the cache)."""
    per_epoch = task.num_examples("train") // batch_size
    dataset = task.build_inputs(
        "train", training=True, batch_size=batch_size, num_epochs=epochs
    )
    iterator = iter(dataset)
    for _ in range(per_epoch):
        next(iterator)
    count, start = 0, time.perf_counter()
    for _ in iterator:
        count += 1
    elapsed = time.perf_counter() - start
    return {
        "images_per_s": round(count * batch_size / elapsed, 1),
        "batches": count,
        "batch_size": batch_size,
        "examples_per_epoch": task.num_examples("train"),
    }


def _attempt(result, name, function):
    """Runs one part; a failure is recorded under the part's name (the
    other parts still run) instead of ending the process."""
    try:
        result[name] = function()
    except Exception as error:  # noqa: BLE001 (reported in the JSON)
        result[name] = {"error": f"{type(error).__name__}: {error}"[:2000]}


def run(spec, data_dir, parts, jit_variants, quick):
    """Every figure of one (model, oneDNN setting), as a dict."""
    sampler = machine.RssSampler()
    sizes = dict(QUICK) if quick else {**FULL, **spec.sizes}
    start = time.perf_counter()
    import keras
    import tensorflow as tf

    from benchmarks import flops, roofline
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    keras.utils.set_random_seed(0)
    result = {
        "model": spec.key,
        "config": f"experiments/configs/{spec.config_file}:"
        f"{spec.config_argument}",
        "overrides": spec.overrides,
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "quick": quick,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    config = bench_models.load_config(spec, data_dir)
    task = task_lib.build_task(config)
    task.prepare_data()
    batch_size = config.train.batch_size
    result["roofline"] = roofline.probe(quick=quick)
    batch = _first_batch(task, batch_size)
    inputs = batch[0]
    model = task.build_model()
    _attempt(
        result,
        "forward_flops_per_image",
        lambda: flops.forward_flops(
            model, _resize_batch(tf, inputs, 1)
        ).as_dict(),
    )
    many = spec.throughput_batch
    if "train" in parts:
        _attempt(
            result,
            "train",
            lambda: time_training(
                tf, task_lib, config, batch, jit_variants, sizes["train"]
            ),
        )
    if "keras" in parts:
        _attempt(
            result,
            "keras",
            lambda: time_keras(
                model,
                _resize_batch(tf, inputs, 1),
                _resize_batch(tf, inputs, many) if many else None,
                sizes,
            ),
        )
    if "saved_model" in parts:
        _attempt(
            result,
            "saved_model",
            lambda: time_saved_model(tf, task, model, config, sizes, many),
        )
    if "pipeline" in parts:
        _attempt(
            result,
            "pipeline",
            lambda: time_pipeline(task, batch_size, sizes["pipeline_epochs"]),
        )
    sampler.stop()
    result["observed_rss_mb"] = round(sampler.observed_mb(), 1)
    result["ru_maxrss_mb"] = round(machine.ru_maxrss_mb(), 1)
    result["peak_rss_mb"] = round(sampler.peak_mb(), 1)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a bench_models key")
    parser.add_argument("--data_dir", required=True)
    parser.add_argument(
        "--parts",
        default=None,
        help=f"comma-separated subset of {bench_models.PARTS} "
        "(default: the model's row)",
    )
    parser.add_argument(
        "--xla", default="0,1", help="train.jit_compile settings to time"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--prepare_only",
        action="store_true",
        help="only build the model's dataset (before parallel workers)",
    )
    parser.add_argument("--out", default=None, help="where the JSON goes")
    args = parser.parse_args(argv)
    spec = bench_models.find(args.model)
    if args.prepare_only:
        from lbie_tf import tasks  # noqa: F401
        from lbie_tf.core import task as task_lib

        config = bench_models.load_config(spec, args.data_dir)
        task_lib.build_task(config).prepare_data()
        return 0
    if args.out is None:
        parser.error("--out is required")
    parts = args.parts.split(",") if args.parts else list(spec.parts)
    jit_variants = [bool(int(x)) for x in args.xla.split(",") if x]
    result = run(spec, args.data_dir, parts, jit_variants, args.quick)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
