"""Benchmarks every registered task's models and writes results/bench.json.

  python -m benchmarks.bench                     # every default model
  python -m benchmarks.bench --models=cosal/paper_t4,referit/lbie
  python -m benchmarks.bench --quick --models=cosal/smoke --out=/tmp/b.json

For each model of `benchmarks.bench_models.MODELS` whose task is
registered, one worker process (`benchmarks.bench_worker`) per oneDNN
setting (TF_ENABLE_ONEDNN_OPTS is read once, when TensorFlow is imported):
training images/s with XLA off and on at the config's batch, batch-1
latency (median, p95) and batch-64 throughput of the Keras model and of the
exported SavedModel, the dense FLOPs per image counted from the traced
graph and the achieved training FLOP/s as a share of the matmul and 3x3
convolution throughput measured in the same process, the input pipeline's
images/s as a multiple of the fastest model's consumption, and each
worker's peak RSS. Ratios (XLA on/off, oneDNN on/off) are computed within
the run. The CoSaL time to the paper's IoU is read from earlier results
files, not trained here. Every figure carries the machine (CPU, cores, TF
and Keras versions, the oneDNN setting); the targets of the issue are
recorded as met or missed.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks import bench_models, machine

ROOT = bench_models.ROOT
DEFAULT_OUT = os.path.join(ROOT, "results", "bench.json")
# The forward pass's dense FLOPs times this is the training step's: the
# backward pass of a matmul or convolution costs two forward passes (the
# gradients with respect to the input and to the weights).
TRAINING_FLOPS_PER_FORWARD = 3
NOTES = {
    "timing": "Training: train_on_batch on one cached batch through "
    "task.compile, warm-up steps, then rounds of steps with the XLA "
    "variants interleaved; images_per_s is the fastest round (another "
    "process's load only slows a round), median_images_per_s the median "
    "round. Inference: predict_on_batch (Keras) or the reloaded SavedModel's "
    "serving_default (tokenisation and post-processing included), outputs "
    "pulled to the host.",
    "flops": "Dense FLOPs (matmul, einsum, convolution, transposed "
    "convolution) counted from the traced forward graph at batch 1, loop "
    "bodies times their trip count (benchmarks/flops.py); element-wise ops "
    f"not counted. Training FLOPs = {TRAINING_FLOPS_PER_FORWARD} x forward.",
    "roofline": "A 2048^3 float32 matmul and a 3x3 convolution (8 x 56 x 56 "
    "x 128 -> 128) as tf.functions in each worker, best of 5; shares divide "
    "a model's training FLOP/s by that worker's probe.",
    "noise": "The machine is shared with other jobs: load averages are "
    "recorded per worker; compare ratios within this run, not across runs.",
}


def _onednn_name(value):
    return "onednn_on" if value == "1" else "onednn_off"


def _xla_name(value):
    return "xla_on" if value else "xla_off"


def _machine_id(description, onednn):
    return (
        f"{description['cpu_model']}, {description['usable_cpus']} cores, "
        f"TF {description['tensorflow']}, Keras {description['keras']}, "
        f"oneDNN {'on' if onednn == '1' else 'off'}"
    )


def registered_tasks():
    from lbie_tf import tasks

    return list(tasks.NAMES)


def select_models(keys):
    """(specs to run, {key: why skipped}) for `keys` (None: the defaults)."""
    if keys is None:
        specs = [s for s in bench_models.MODELS if s.default]
    else:
        specs = [bench_models.find(k) for k in keys]
    names = registered_tasks()
    chosen, skipped = [], {}
    for spec in specs:
        if spec.task not in names:
            skipped[spec.key] = f"task {spec.task!r} is not registered"
        elif not bench_models.config_file_exists(spec):
            skipped[spec.key] = f"no experiments/configs/{spec.config_file}"
        else:
            chosen.append(spec)
    return chosen, skipped


def _worker_command(spec, data_dir, out, xla, quick):
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_worker",
        f"--model={spec.key}",
        f"--data_dir={data_dir}",
        f"--xla={xla}",
        f"--out={out}",
    ]
    if quick:
        command.append("--quick")
    return command


def _start_worker(spec, onednn, data_dir, scratch, xla, quick):
    out = os.path.join(
        scratch, f"{spec.key.replace('/', '_')}_onednn{onednn}.json"
    )
    env = {
        **os.environ,
        "TF_ENABLE_ONEDNN_OPTS": onednn,
        "PYTHONUNBUFFERED": "1",
    }
    # The oneDNN start-up notice is how TensorFlow says the setting took.
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"
    stderr = open(out + ".stderr", "w+")  # noqa: SIM115 (closed in _finish)
    process = subprocess.Popen(
        _worker_command(spec, data_dir, out, xla, quick),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return {
        "spec": spec,
        "onednn": onednn,
        "out": out,
        "process": process,
        "stderr": stderr,
        "start": time.perf_counter(),
    }


def _finish(worker, timeout_s):
    process = worker["process"]
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    worker["stderr"].seek(0)
    stderr = worker["stderr"].read()
    worker["stderr"].close()
    os.remove(worker["out"] + ".stderr")
    record = {
        "model": worker["spec"].key,
        "tf_enable_onednn_opts": worker["onednn"],
        "returncode": process.returncode,
        "wall_s": round(time.perf_counter() - worker["start"], 1),
        "onednn_notice_seen": "oneDNN custom operations are on" in stderr,
    }
    result = None
    if process.returncode == 0 and os.path.isfile(worker["out"]):
        with open(worker["out"]) as f:
            result = json.load(f)
    else:
        record["stderr_tail"] = stderr[-3000:]
    return record, result


def run_workers(specs, onednn_values, data_dir, xla, quick, jobs, timeout_s):
    """Runs every (model, oneDNN) worker, `jobs` at a time, each model's
    variants back to back; returns (worker records, {(key, onednn):
    result})."""
    scratch = tempfile.mkdtemp(prefix="bench_workers_")
    if jobs > 1:
        # Workers side by side would build the same dataset at once.
        for spec in specs:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_worker",
                    f"--model={spec.key}",
                    f"--data_dir={data_dir}",
                    "--prepare_only",
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=timeout_s,
            )
    queue = [
        (spec, value)
        for spec in specs
        for value in onednn_values
        if spec.onednn is None or value in spec.onednn
    ]
    running, records, results = [], [], {}
    while queue or running:
        while queue and len(running) < jobs:
            spec, value = queue.pop(0)
            print(f"bench: {spec.key} oneDNN={value}", file=sys.stderr)
            running.append(
                _start_worker(spec, value, data_dir, scratch, xla, quick)
            )
        worker = running.pop(0)
        record, result = _finish(worker, timeout_s)
        records.append(record)
        if result is not None:
            result["onednn_notice_seen"] = record["onednn_notice_seen"]
            results[(worker["spec"].key, worker["onednn"])] = result
    shutil.rmtree(scratch, ignore_errors=True)
    return records, results


def _ratio(numerator, denominator):
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def _images_per_s(result, xla):
    train = result.get("train", {})
    return train.get(xla, {}).get("images_per_s")


def _errors(result):
    return {
        name: part["error"]
        for name, part in result.items()
        if isinstance(part, dict) and "error" in part
    }


def _inference(part):
    if not part or "error" in part:
        return part
    summary = {
        "batch1_median_ms": part["batch1"]["median_ms"],
        "batch1_p95_ms": part["batch1"]["p95_ms"],
    }
    if "throughput" in part:
        summary["throughput_batch"] = part["throughput"]["batch_size"]
        summary["throughput_images_per_s"] = part["throughput"]["images_per_s"]
    if "export_s" in part:
        summary["export_s"] = part["export_s"]
    return summary


def summarize_model(spec, variants, description):
    """The bench.json entry of one model from its workers' results."""
    first = next(iter(variants.values()))
    flops = first.get("forward_flops_per_image", {})
    forward = flops.get("dense_flops")
    entry = {
        "config": first["config"],
        "overrides": first["overrides"],
        "forward_gflop_per_image": (
            None if forward is None else round(forward / 1e9, 6)
        ),
        "forward_flops_by_op_type": flops.get("by_op_type"),
        "flops_uncounted": flops.get("uncounted"),
        "variants": {},
    }
    for onednn, result in variants.items():
        name = _onednn_name(onednn)
        variant = {
            "machine": _machine_id(description, onednn),
            # TensorFlow's "oneDNN custom operations are on" start-up line.
            "onednn_notice_seen": result.get("onednn_notice_seen"),
            "roofline_gflop_per_s": {
                "matmul": result["roofline"]["matmul"]["gflop_per_s"],
                "conv3x3": result["roofline"]["conv3x3"]["gflop_per_s"],
            },
            "peak_rss_mb": result["peak_rss_mb"],
            "ru_maxrss_mb": result["ru_maxrss_mb"],
            "observed_rss_mb": result["observed_rss_mb"],
            "load_average_start": result["load_average_start"],
            "load_average_end": result["load_average_end"],
            "worker_wall_s": result["wall_s"],
        }
        train = result.get("train")
        if train and "error" not in train:
            variant["train_batch_size"] = train["batch_size"]
            for xla in ("xla_off", "xla_on"):
                if xla not in train:
                    continue
                rate = train[xla]["images_per_s"]
                figures = {
                    "images_per_s": rate,
                    "median_images_per_s": train[xla]["median_images_per_s"],
                    "step_ms": train[xla]["step_ms"],
                    "first_step_s": train[xla]["first_step_s"],
                    "first_loss": train[xla]["first_loss"],
                    "last_loss": train[xla]["last_loss"],
                }
                if forward:
                    achieved = TRAINING_FLOPS_PER_FORWARD * forward * rate
                    roof = variant["roofline_gflop_per_s"]
                    figures["achieved_gflop_per_s"] = round(achieved / 1e9, 3)
                    figures["matmul_share"] = round(
                        achieved / 1e9 / roof["matmul"], 4
                    )
                    figures["conv3x3_share"] = round(
                        achieved / 1e9 / roof["conv3x3"], 4
                    )
                variant[f"train_{xla}"] = figures
            if "xla_off" in train and "xla_on" in train:
                off, on = train["xla_off"], train["xla_on"]
                variant["xla_on_over_off"] = _ratio(
                    on["images_per_s"], off["images_per_s"]
                )
                variant["xla_on_over_off_median"] = _ratio(
                    on["median_images_per_s"], off["median_images_per_s"]
                )
                difference = abs(on["first_loss"] - off["first_loss"])
                scale = max(abs(off["first_loss"]), 1e-12)
                variant["xla_first_loss_relative_difference"] = float(
                    f"{difference / scale:.3g}"
                )
        for part in ("keras", "saved_model"):
            if part in result:
                variant[part] = _inference(result[part])
        if "pipeline" in result:
            variant["pipeline"] = result["pipeline"]
        errors = _errors(result)
        if errors:
            variant["errors"] = errors
        entry["variants"][name] = variant
    on, off = variants.get("1"), variants.get("0")
    if on is not None and off is not None:
        entry["onednn_on_over_off"] = {
            xla: _ratio(_images_per_s(on, xla), _images_per_s(off, xla))
            for xla in ("xla_off", "xla_on")
        }
        for part in ("keras", "saved_model"):
            a, b = on.get(part, {}), off.get(part, {})
            if "batch1" in a and "batch1" in b:
                entry[f"{part}_batch1_p95_onednn_on_over_off"] = _ratio(
                    a["batch1"]["p95_ms"], b["batch1"]["p95_ms"]
                )
    return entry


def summarize_pipelines(models):
    """Per task: the input pipeline's images/s (oneDNN on if measured) and
    its multiple of the fastest model's training consumption."""
    pipelines = {}
    for key, entry in models.items():
        task = key.split("/")[0]
        for variant_name, variant in entry["variants"].items():
            rates = [
                variant[f"train_{xla}"]["images_per_s"]
                for xla in ("xla_off", "xla_on")
                if f"train_{xla}" in variant
            ]
            slot = pipelines.setdefault(
                task, {"fastest_train_images_per_s": 0.0}
            )
            if rates and max(rates) > slot["fastest_train_images_per_s"]:
                slot["fastest_train_images_per_s"] = max(rates)
                slot["fastest_model"] = f"{key} ({variant_name})"
            pipeline = variant.get("pipeline")
            if (
                pipeline
                and "error" not in pipeline
                and ("pipeline" not in slot or variant_name == "onednn_on")
            ):
                slot["pipeline"] = {"model": key, "variant": variant_name}
                slot["pipeline_images_per_s"] = pipeline["images_per_s"]
    for slot in pipelines.values():
        slot["multiple_of_fastest_model"] = _ratio(
            slot.get("pipeline_images_per_s"),
            slot["fastest_train_images_per_s"],
        )
    return {
        task: slot for task, slot in pipelines.items() if "pipeline" in slot
    }


def _original_log_time_to_iou(path, cell):
    """Epoch wall seconds (evaluation epochs included) summed until the
    first evaluation at or above the paper's IoU, from a Table 2 log."""
    with open(path) as f:
        lines = f.read().split("=== Table 2 cell ")
    section = next((s for s in lines if s.startswith(f"{cell} ===")), None)
    if section is None:
        return None
    wall, reached = 0.0, None
    for line in section.splitlines():
        # An epoch's evaluation line comes before its progress line.
        evaluation = re.match(
            r"epoch (\d+): test iou_shapes ([\d.]+) \(paper ([\d.]+)\)", line
        )
        if evaluation and float(evaluation.group(2)) >= float(
            evaluation.group(3)
        ):
            reached = {
                "epoch": int(evaluation.group(1)),
                "iou_shapes": float(evaluation.group(2)),
                "paper_iou": float(evaluation.group(3)),
            }
        step = re.match(r"\d+/\d+ - (\d+)s - ", line)
        if step:
            wall += float(step.group(1))
            if reached is not None:
                return {"wall_s": wall, **reached}
    return None


def time_to_paper_iou(root=ROOT):
    """CoSaL T = 4 time to the paper's IoU, read from earlier runs (a full
    training run is no benchmark step)."""
    found = {}
    path = os.path.join(root, "results", "cosal_train_benchmark.json")
    if os.path.isfile(path):
        with open(path) as f:
            run = json.load(f).get("time_to_paper_iou")
        if run:
            found["cosal/paper_t4"] = {
                "cell": run["cell"],
                "paper_iou": run["paper_iou"],
                "train_s": run["train_s"],
                "iou_shapes": run["history_train_s_iou"][-1][1],
                "what": "training seconds (evaluation excluded), batch 32, "
                "10,000 training images per epoch, alone on the machine",
                "source": "results/cosal_train_benchmark.json "
                "(python -m benchmarks.cosal_train --time_to_iou "
                "--batch_size=32 --max_minutes=10)",
            }
    log = os.path.join(
        root, "results", "original_head", "table2_original_head_A.log"
    )
    if os.path.isfile(log):
        reached = _original_log_time_to_iou(log, "original_t4_attn_d8")
        if reached:
            found["cosal/original_t4"] = {
                "cell": "original_t4_attn_d8",
                **reached,
                "what": "epoch wall seconds summed (evaluation epochs "
                "include their test evaluation), batch 32, 10,000 training "
                "images per epoch, three runs side by side on 2 cores; the "
                "log evaluates every 2 epochs, so this is an upper bound",
                "source": "results/original_head/table2_original_head_A.log",
            }
    return found


def _measured(models, target):
    entry = models.get(target["model"])
    if entry is None:
        return None, None
    variants = entry["variants"]
    variant_name = "onednn_on" if "onednn_on" in variants else None
    variant_name = variant_name or next(iter(variants), None)
    if variant_name is None:
        return None, None
    variant = variants[variant_name]
    if target["name"].endswith("_ms"):
        serving = variant.get("saved_model") or {}
        return serving.get("batch1_median_ms"), variant_name
    shares = [
        variant[f"train_{xla}"].get("matmul_share")
        for xla in ("xla_off", "xla_on")
        if f"train_{xla}" in variant
    ]
    shares = [s for s in shares if s is not None]
    return (max(shares) if shares else None), variant_name


def evaluate_targets(models, description):
    """Each target of bench_models.TARGETS with its measured value (the
    oneDNN-on variant; for the share, the faster XLA setting) and met /
    missed (None: not measured)."""
    rows = []
    for target in bench_models.TARGETS:
        value, variant_name = _measured(models, target)
        met = None
        if value is not None:
            if target["direction"] == "<=":
                met = value <= target["limit"]
            else:
                met = value >= target["limit"]
        rows.append(
            {
                **target,
                "measured": value,
                "variant": variant_name,
                "status": {True: "met", False: "missed", None: "not measured"}[
                    met
                ],
                "machine": None
                if variant_name is None
                else _machine_id(
                    description, "1" if variant_name == "onednn_on" else "0"
                ),
            }
        )
    return rows


def write_json(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(handle, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.chmod(staging, 0o644)
    os.replace(staging, path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Writes JSON (--out); prints the output path.",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated keys of benchmarks/bench_models.py "
        "(default: every default row whose task is registered)",
    )
    parser.add_argument(
        "--onednn",
        default="1,0",
        help="TF_ENABLE_ONEDNN_OPTS values, one worker each (default 1,0)",
    )
    parser.add_argument(
        "--xla", default="0,1", help="train.jit_compile settings (0,1)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few steps and calls, small probes (for tests; figures rough)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="workers at a time (> 1 only for tests: they share the CPU)",
    )
    parser.add_argument("--data_dir", default=None, help="default: a temp dir")
    parser.add_argument("--worker_timeout_s", type=float, default=1200)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    description = machine.describe()
    keys = args.models.split(",") if args.models else None
    specs, skipped = select_models(keys)
    onednn_values = [v for v in args.onednn.split(",") if v]
    if any(v not in ("0", "1") for v in onednn_values):
        parser.error(f"--onednn takes 0 and/or 1; received {args.onednn!r}")
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench_data_")
    records, results = run_workers(
        specs,
        onednn_values,
        data_dir,
        args.xla,
        args.quick,
        args.jobs,
        args.worker_timeout_s,
    )
    if args.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    models = {}
    for spec in specs:
        variants = {
            value: results[(spec.key, value)]
            for value in onednn_values
            if (spec.key, value) in results
        }
        if variants:
            models[spec.key] = summarize_model(spec, variants, description)
    data = {
        "benchmark": "python -m benchmarks.bench "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "quick": args.quick,
        "machine": {
            **description,
            "onednn_settings": onednn_values,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "notes": NOTES,
        "models": models,
        "input_pipeline": summarize_pipelines(models),
        "time_to_paper_iou": time_to_paper_iou(),
        "targets": evaluate_targets(models, description),
        "skipped": skipped,
        "workers": records,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    write_json(args.out, data)
    print(args.out)
    failed = [r for r in records if r["returncode"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
