"""Profiles one model's training step by op and writes a Markdown report.

  python -m benchmarks.profile_step                  # original T = 4 CoSaL
  python -m benchmarks.profile_step --model=cosal/paper_t4 --out=/tmp/p.md

The step is `train_on_batch` on one cached batch through `task.compile`
(XLA off, so that every TensorFlow op shows). After a warm-up, a few steps
are timed without the profiler, then traced with `tf.profiler.experimental`;
the trace's XPlane protobuf is read back here and each op's self time
(its events minus the ops nested in them) is summed by op type, by op name
and by model part (the name scope under the model or loss, forward and
backward apart). Shares are of the traced op time, which the profiler
inflates, so they are relative figures; the step time is the untraced one.
"""

import argparse
import collections
import contextlib
import glob
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import bench_models, machine  # noqa: E402

DEFAULT_OUT = os.path.join(bench_models.ROOT, "results", "bench_profile.md")


def _self_times(plane):
    """{(op name, op type): self picoseconds} of a host plane's executor
    lines."""
    metadata = plane.event_metadata
    totals = collections.Counter()
    for line in plane.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        events = sorted(
            line.events, key=lambda e: (e.offset_ps, -e.duration_ps)
        )
        stack, own = [], {}
        for index, event in enumerate(events):
            name = metadata[event.metadata_id].name
            # TensorFlow op events are named "op_name:OpType".
            if ":" not in name or name.startswith("ExecutorState"):
                continue
            while stack and stack[-1][1] <= event.offset_ps:
                stack.pop()
            if stack:
                parent = stack[-1][0]
                own[parent] = own.get(parent, 0) - event.duration_ps
            own[index] = own.get(index, 0) + event.duration_ps
            stack.append((index, event.offset_ps + event.duration_ps))
        for index, picoseconds in own.items():
            name = metadata[events[index].metadata_id].name
            op_name, op_type = name.rsplit(":", 1)
            totals[(op_name, op_type)] += picoseconds
    return totals


def read_trace(logdir):
    """Self times of the newest trace under `logdir` (see _self_times)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(f"{logdir}/plugins/profile/*/*.xplane.pb"))
    if not paths:
        raise FileNotFoundError(f"no .xplane.pb under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        if plane.name.startswith("/host:"):
            totals.update(_self_times(plane))
    return totals


def model_part(op_name):
    """ "forward|backward|optimizer: <scope>" of an op: the first two name
    scopes under the model or the loss (layer, then sub-layer)."""
    direction = "forward"
    parts = op_name.split("/")
    if parts[0] == "gradient_tape":
        direction, parts = "backward", parts[1:]
    if parts[0] in ("adam", "Adam", "SGD", "sgd") or "optimizer" in parts[0]:
        return "optimizer"
    scope = "/".join(p for p in parts[1:3] if not p.startswith(("_", "while")))
    if parts[0] == "compile_loss":
        scope = "/".join(parts[1:2])
    return f"{direction}: {scope or parts[0]}"


def summarize(totals, top):
    total = sum(totals.values()) or 1
    by_type, by_part = collections.Counter(), collections.Counter()
    for (name, op_type), picoseconds in totals.items():
        by_type[op_type] += picoseconds
        by_part[model_part(name)] += picoseconds
    by_name = collections.Counter(
        {f"{name} ({op_type})": ps for (name, op_type), ps in totals.items()}
    )

    def rows(counter):
        return [
            {"what": key, "share": round(value / total, 4)}
            for key, value in counter.most_common(top)
        ]

    return {
        "traced_op_ms": round(total / 1e9, 1),
        "by_op_type": rows(by_type),
        "by_part": rows(by_part),
        "by_op": rows(by_name),
    }


def time_steps(model, inputs, targets, rounds, steps):
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            logs = model.train_on_batch(inputs, targets, return_dict=True)
        float(logs["loss"])
        seconds.append((time.perf_counter() - start) / steps)
    return {
        "best_step_ms": round(1e3 * min(seconds), 2),
        "median_step_ms": round(1e3 * statistics.median(seconds), 2),
        "rounds": rounds,
        "steps_per_round": steps,
    }


def _moveaxis_mixture_nll(labels, step_logits, epsilon=1e-6):
    """The mixture loss as first written (keras_layers.mixture_termination
    before the rewrite): the whole tensor's step axis moved, then sliced."""
    from keras import ops

    from keras_layers import mixture_termination

    step_last = ops.moveaxis(ops.cast(step_logits, "float32"), 1, -2)
    log_stop = mixture_termination.mixture_log_stop_probabilities(
        step_last[..., 0], epsilon
    )
    class_logits = step_last[..., 1:]
    log_probs = ops.log_softmax(class_logits, axis=-1)
    one_hot = ops.one_hot(
        ops.cast(labels, "int32"), class_logits.shape[-1], dtype="float32"
    )
    label_log_probs = ops.sum(log_probs * one_hot[..., None, :], axis=-1)
    return -ops.logsumexp(log_stop + label_log_probs, axis=-1)


def _library_conv_transpose(inputs, kernel, strides):
    """The bilinear head as first written: TensorFlow's transposed conv."""
    from keras import ops

    return ops.conv_transpose(inputs, kernel, strides=strides, padding="same")


class _FirstFormulas:
    """Inside the block, models trace the mixture loss and the bilinear
    deconvolution as first written (their graphs keep them afterwards)."""

    def __enter__(self):
        from keras_layers import bilinear_upsampling
        from lbie_tf.cosal import losses

        self._saved = (
            losses.mixture_negative_log_likelihood,
            bilinear_upsampling.transposed_conv_by_taps,
        )
        losses.mixture_negative_log_likelihood = _moveaxis_mixture_nll
        bilinear_upsampling.transposed_conv_by_taps = _library_conv_transpose
        return self

    def __exit__(self, *args):
        from keras_layers import bilinear_upsampling
        from lbie_tf.cosal import losses

        (
            losses.mixture_negative_log_likelihood,
            bilinear_upsampling.transposed_conv_by_taps,
        ) = self._saved
        return False


def _fwd_bwd_ms(tf, function, arguments, rounds, calls):
    """Best and median ms of a traced forward + backward pass."""

    @tf.function
    def step(*values):
        with tf.GradientTape() as tape:
            tape.watch(values)
            loss = tf.reduce_sum(function(*values))
        return loss, tape.gradient(loss, values)

    for _ in range(2):
        tf.nest.map_structure(lambda t: t.numpy(), step(*arguments))
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            tf.nest.map_structure(lambda t: t.numpy(), step(*arguments))
        seconds.append((time.perf_counter() - start) / calls)
    return 1e3 * min(seconds), 1e3 * statistics.median(seconds)


def compare_rewrites(task, inputs, targets, rounds, steps):
    """Before / after of the rewritten mixture loss and bilinear head, in
    this process: the training step of a model traced with the first
    formulas and of one traced with the current ones (same initial weights,
    rounds interleaved), and each rewritten piece alone at the model's
    shapes (forward + backward)."""
    import numpy as np
    import tensorflow as tf

    models = {}
    initial = None
    for name in ("first", "current"):
        model = task.build_model(training_steps=100_000)
        if initial is None:
            initial = model.get_weights()
        else:
            model.set_weights(initial)
        task.compile(model, steps_per_epoch=10_000)
        if name == "first":
            with _FirstFormulas():
                logs = model.train_on_batch(inputs, targets, return_dict=True)
        else:
            logs = model.train_on_batch(inputs, targets, return_dict=True)
        models[name] = {"model": model, "first_loss": float(logs["loss"])}
        model.train_on_batch(inputs, targets)
    for _ in range(rounds):
        for entry in models.values():
            timing = time_steps(entry["model"], inputs, targets, 1, steps)
            entry.setdefault("step_ms", []).append(timing["best_step_ms"])
    result = {
        name: {
            "best_step_ms": min(entry["step_ms"]),
            "median_step_ms": round(statistics.median(entry["step_ms"]), 2),
            "first_loss": entry["first_loss"],
        }
        for name, entry in models.items()
    }
    result["step_speedup"] = round(
        result["first"]["best_step_ms"] / result["current"]["best_step_ms"], 3
    )

    from keras_layers import bilinear_upsampling, mixture_termination

    outputs = models["current"]["model"].predict_on_batch(inputs)
    pieces = {}
    if "step_logits" in outputs:
        step_logits = tf.constant(outputs["step_logits"])
        labels = tf.cast(next(iter(targets.values())), tf.int32)
        pieces["mixture loss"] = (
            lambda x: _moveaxis_mixture_nll(labels, x),
            lambda x: mixture_termination.mixture_negative_log_likelihood(
                labels, x
            ),
            [step_logits],
        )
    layer = next(
        (
            layer
            for layer in _all_layers(models["current"]["model"])
            if isinstance(layer, bilinear_upsampling.BilinearConv2DTranspose)
        ),
        None,
    )
    if layer is not None and layer.kernel_size == 2 * layer.strides:
        shape = [int(d) for d in layer.input.shape[1:]]
        rows = int(tf.nest.flatten(inputs)[0].shape[0])
        if "step_logits" in outputs:
            rows *= int(outputs["step_logits"].shape[1])
        rng = np.random.default_rng(0)
        x = tf.constant(rng.normal(size=[rows, *shape]), tf.float32)
        kernel = tf.constant(np.asarray(layer.kernel))
        pieces["bilinear deconvolution"] = (
            lambda x, k: _library_conv_transpose(x, k, layer.strides),
            lambda x, k: bilinear_upsampling.transposed_conv_by_taps(
                x, k, layer.strides
            ),
            [x, kernel],
        )
    for name, (first, current, arguments) in pieces.items():
        before = _fwd_bwd_ms(tf, first, arguments, rounds, steps)
        after = _fwd_bwd_ms(tf, current, arguments, rounds, steps)
        result[name] = {
            "shapes": [list(a.shape) for a in arguments],
            "first_best_ms": round(before[0], 2),
            "current_best_ms": round(after[0], 2),
            "first_median_ms": round(before[1], 2),
            "current_median_ms": round(after[1], 2),
            "speedup": round(before[0] / after[0], 2),
        }
    return result


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _rewrites_markdown(result):
    lines = [
        "## Before / after the rewrites (this run)",
        "",
        "The training step of a model traced with the first formulas (the "
        "mixture loss over the moved step axis, TensorFlow's transposed "
        "convolution for the bilinear head) against one traced with the "
        "current ones, same initial weights, rounds interleaved; then each "
        "piece alone, forward + backward, at the model's shapes. Tests: "
        "tests/keras_layers/mixture_termination_test.py and "
        "bilinear_upsampling_test.py compare the formulas' values and "
        "gradients on random inputs.",
        "",
        "| what | first, best / median ms | current, best / median ms | "
        "speed-up |",
        "|---|---:|---:|---:|",
        f"| training step | {result['first']['best_step_ms']} / "
        f"{result['first']['median_step_ms']} | "
        f"{result['current']['best_step_ms']} / "
        f"{result['current']['median_step_ms']} | "
        f"{result['step_speedup']}x |",
    ]
    for name in ("mixture loss", "bilinear deconvolution"):
        if name in result:
            piece = result[name]
            lines.append(
                f"| {name} {piece['shapes']} | {piece['first_best_ms']} / "
                f"{piece['first_median_ms']} | {piece['current_best_ms']} / "
                f"{piece['current_median_ms']} | {piece['speedup']}x |"
            )
    lines += [
        "",
        f"First training loss: {result['first']['first_loss']:.6f} (first "
        f"formulas), {result['current']['first_loss']:.6f} (current).",
    ]
    return "\n".join(lines)


def profile(
    spec, data_dir, steps, rounds, traced_steps, top, rewrites, first=False
):
    import keras
    import tensorflow as tf

    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    keras.utils.set_random_seed(0)
    config = bench_models.load_config(spec, data_dir)
    config.train.jit_compile = False
    task = task_lib.build_task(config)
    task.prepare_data()
    dataset = task.build_inputs(
        "train", training=True, batch_size=config.train.batch_size
    )
    inputs, targets = next(iter(dataset))
    model = task.compile(
        task.build_model(training_steps=100_000), steps_per_epoch=10_000
    )
    # The first step traces the graph: with `first`, the first formulas'.
    with _FirstFormulas() if first else contextlib.nullcontext():
        model.train_on_batch(inputs, targets)
    for _ in range(2):
        model.train_on_batch(inputs, targets)
    timing = time_steps(model, inputs, targets, rounds, steps)
    with tempfile.TemporaryDirectory(prefix="bench_profile_") as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(traced_steps):
            model.train_on_batch(inputs, targets)
        tf.profiler.experimental.stop()
        totals = read_trace(logdir)
    extra = {}
    if rewrites:
        comparison = compare_rewrites(task, inputs, targets, rounds, steps)
        extra = {
            "rewrites": comparison,
            "extra_sections": [_rewrites_markdown(comparison)],
        }
    return {
        "model": spec.key,
        "config": f"experiments/configs/{spec.config_file}:"
        f"{spec.config_argument}",
        "batch_size": config.train.batch_size,
        "formulas": "first" if first else "current",
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "timing": timing,
        "traced_steps": traced_steps,
        **summarize(totals, top),
        **extra,
    }


def to_markdown(report, description, command):
    lines = [
        f"# Training-step profile: {report['model']}",
        "",
        f"Written by `{command}` ({report['config']}, "
        f"{report['formulas']} formulas, batch "
        f"{report['batch_size']}, XLA off, TF_ENABLE_ONEDNN_OPTS="
        f"{report['tf_enable_onednn_opts'] or 'unset (on)'}) on "
        f"{description['cpu_model']}, {description['usable_cpus']} cores, "
        f"TF {description['tensorflow']}, Keras {description['keras']}; "
        f"load average {description['load_average_1_5_15']} (the machine "
        "is shared: read shares, not absolute times).",
        "",
        f"Untraced step: best {report['timing']['best_step_ms']} ms, median "
        f"{report['timing']['median_step_ms']} ms ({report['timing']['rounds']}"
        f" rounds of {report['timing']['steps_per_round']} steps). "
        f"{report['traced_steps']} traced steps; shares are of the ops' "
        "summed self time.",
    ]
    for title, key in (
        ("By model part (name scope; backward = its gradient ops)", "by_part"),
        ("By op type", "by_op_type"),
        ("Top ops", "by_op"),
    ):
        lines += ["", f"## {title}", "", "| share | what |", "|---:|---|"]
        lines += [
            f"| {row['share']:.1%} | `{row['what']}` |" for row in report[key]
        ]
    for section in report.get("extra_sections", []):
        lines += ["", section]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Writes Markdown (--out) and, with --json, the same as JSON.",
    )
    parser.add_argument("--model", default="cosal/original_t4")
    parser.add_argument("--data_dir", default=None, help="default: temp dir")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--traced_steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--json", default=None, help="also write JSON here")
    parser.add_argument(
        "--first_formulas",
        action="store_true",
        help="profile the model traced with the first formulas of the "
        "mixture loss and the bilinear head (before the rewrites)",
    )
    parser.add_argument(
        "--rewrites",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the first formulas of the rewritten mixture loss "
        "and bilinear head against the current ones",
    )
    args = parser.parse_args(argv)
    spec = bench_models.find(args.model)
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench_data_")
    report = profile(
        spec,
        data_dir,
        args.steps,
        args.rounds,
        args.traced_steps,
        args.top,
        args.rewrites,
        first=args.first_formulas,
    )
    if args.data_dir is None:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    command = "python -m benchmarks.profile_step " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    description = machine.describe()
    report["machine"] = description
    with open(args.out, "w") as f:
        f.write(to_markdown(report, description, command.strip()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
