"""Writes the README's speed table from results/bench.json, between markers.

  python -m benchmarks.readme_table [--bench=results/bench.json]
      [--readme=README.md]

Replaces the text between `<!-- bench:start -->` and `<!-- bench:end -->`
(both must be there, once each) and leaves the rest of the file alone.
"""

import argparse
import json
import os
import sys

from benchmarks import bench_models

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _number(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _percent(value):
    return "-" if value is None else f"{value:.1%}"


def _pair(variant, key, field, form=_number):
    a = (variant.get(f"{key}_xla_off") or {}).get(field)
    b = (variant.get(f"{key}_xla_on") or {}).get(field)
    return f"{form(a)} / {form(b)}"


def _serving(variant, part):
    serving = variant.get(part) or {}
    if not serving or "error" in serving:
        return "-"
    text = (
        f"{_number(serving['batch1_median_ms'])} / "
        f"{_number(serving['batch1_p95_ms'])}"
    )
    if "throughput_images_per_s" in serving:
        text += (
            f"; {_number(serving['throughput_images_per_s'], 0)} "
            f"at {serving['throughput_batch']}"
        )
    return text


def render(bench):
    """The Markdown between the markers."""
    m = bench["machine"]
    lines = [
        f"`{bench['benchmark'].strip()}` on {m['cpu_model']} "
        f"({m['usable_cpus']} cores, {', '.join(m['cpu_flags'])}), "
        f"TF {m['tensorflow']}, Keras {m['keras']}, {bench['date']}; "
        f"load average {m['load_average_1_5_15']} at the start and "
        f"{m['load_average_end']} at the end (a shared machine: read the "
        "ratios, which come from one run, more than the absolute figures). "
        f"Every figure and its method: `results/bench.json`.",
        "",
        "| model | batch | train images/s, XLA off / on (oneDNN on) | XLA "
        "on/off | oneDNN on/off (XLA off / on) | forward GFLOP / image | "
        "train share of matmul, XLA off / on | SavedModel batch 1 ms "
        "median / p95; images/s | same, oneDNN off | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, entry in bench["models"].items():
        variants = entry["variants"]
        on = variants.get("onednn_on", {})
        off = variants.get("onednn_off", {})
        onednn = entry.get("onednn_on_over_off") or {}
        rss = max(
            (v.get("peak_rss_mb", 0) for v in variants.values()), default=0
        )
        shares = _pair(on, "train", "matmul_share", _percent)
        if "train_xla_off" not in on and "keras" in on:
            keras_ms = on["keras"].get("batch1_median_ms")
            shares = f"(Keras batch 1: {_number(keras_ms, 0)} ms)"
        lines.append(
            f"| {key} | {on.get('train_batch_size', '-')} | "
            f"{_pair(on, 'train', 'images_per_s')} | "
            f"{_number(on.get('xla_on_over_off'), 2)} | "
            f"{_number(onednn.get('xla_off'), 2)} / "
            f"{_number(onednn.get('xla_on'), 2)} | "
            f"{_number(entry.get('forward_gflop_per_image'), 3)} | "
            f"{shares} | {_serving(on, 'saved_model')} | "
            f"{_serving(off, 'saved_model')} | {_number(rss, 0)} |"
        )
    roofs = [
        (key, name, v["roofline_gflop_per_s"])
        for key, entry in bench["models"].items()
        for name, v in entry["variants"].items()
    ]
    if roofs:
        matmul = [r[2]["matmul"] for r in roofs]
        conv = [r[2]["conv3x3"] for r in roofs]
        lines += [
            "",
            f"Roofline probes (each worker's own): matmul {min(matmul):.0f} "
            f"to {max(matmul):.0f} GFLOP/s, 3x3 conv {min(conv):.0f} to "
            f"{max(conv):.0f} GFLOP/s.",
        ]
    for task, pipeline in bench.get("input_pipeline", {}).items():
        lines.append(
            f"Input pipeline ({task}): "
            f"{_number(pipeline['pipeline_images_per_s'], 0)} images/s, "
            f"{_number(pipeline['multiple_of_fastest_model'])}x the fastest "
            f"model ({pipeline['fastest_model']})."
        )
    for key, run in bench.get("time_to_paper_iou", {}).items():
        seconds = run.get("train_s", run.get("wall_s"))
        lines.append(
            f"Time to the paper's IoU ({key}, {run['paper_iou']}): "
            f"{_number(seconds, 0)} s ({run['what']}; {run['source']})."
        )
    lines += [
        "",
        "| target | limit | measured | status |",
        "|---|---:|---:|---|",
    ]
    for target in bench.get("targets", []):
        lines.append(
            f"| {target['what']} | {target['direction']} {target['limit']} | "
            f"{_number(target['measured'], 3)} | {target['status']} |"
        )
    if bench.get("skipped"):
        skipped = "; ".join(f"{k}: {v}" for k, v in bench["skipped"].items())
        lines += ["", f"Not measured: {skipped}."]
    return "\n".join(lines)


def replace_between_markers(text, body):
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(
            f"the README must hold {START} and {END} once each, in order."
        )
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{body}\n{END}{tail}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bench", default=os.path.join(bench_models.ROOT, "results/bench.json")
    )
    parser.add_argument(
        "--readme", default=os.path.join(bench_models.ROOT, "README.md")
    )
    args = parser.parse_args(argv)
    with open(args.bench) as f:
        bench = json.load(f)
    with open(args.readme) as f:
        text = f.read()
    try:
        replace_between_markers(text, "")
        updated = replace_between_markers(text, render(bench))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(args.readme, "w") as f:
        f.write(updated)
    print(args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
