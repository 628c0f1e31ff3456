"""Times CoSaL generation and a full TFDS build; prints the figures as JSON.

Usage:
  python -m benchmarks.cosal_build [--config=direct_8] [--data_dir=DIR]
      [--generation_examples=5000] [--out=results/cosal_build_benchmark.json]

Without --data_dir the build goes to a temporary directory that is removed
afterwards.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import tensorflow as tf
import tensorflow_datasets as tfds

from data_builders.cosal import generator
from data_builders.cosal.cosal_dataset_builder import (
    REGISTERED_CONFIGS,
    Builder,
    make_config,
)


def _peak_rss_mb(*observed_mb):
    # ru_maxrss is in kilobytes on Linux. The kernel updates it lazily, so it
    # can lag the current RSS by a page or so: the peak is at least every
    # RSS observed directly.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(maxrss, _current_rss_mb(), *observed_mb)


def _current_rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_benchmark(config, generation_examples, data_dir):
    """Returns a dict of timings and memory figures for one config."""
    start_rss = _current_rss_mb()
    start = time.perf_counter()
    for _ in generator.generate_split(
        "train",
        generation_examples,
        seed=config.seed,
        num_direct=config.num_direct,
        num_colors=config.num_colors,
        image_size=config.image_size,
        reproduce_coverage_bug=bool(config.reproduce_coverage_bug),
    ):
        pass
    generation_s = time.perf_counter() - start
    rss_after_generation = _current_rss_mb()

    builder = Builder(config=config, data_dir=data_dir)
    start = time.perf_counter()
    builder.download_and_prepare()
    build_s = time.perf_counter() - start
    total = config.train_size + config.test_size
    disk_bytes = sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(builder.data_dir)
        for name in names
    )
    return {
        "config": config.name,
        "num_examples": total,
        "generation_examples": generation_examples,
        "generation_examples_per_s": round(generation_examples / generation_s),
        "build_wall_s": round(build_s, 1),
        "build_examples_per_s": round(total / build_s),
        "rss_mb_before_generation": round(start_rss),
        "rss_mb_after_generation": round(rss_after_generation),
        "peak_rss_mb": round(_peak_rss_mb(start_rss, rss_after_generation)),
        "dataset_bytes_on_disk": disk_bytes,
        "dataset_mib_on_disk": round(disk_bytes / 2**20, 1),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
        "tensorflow_datasets": tfds.__version__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default="direct_8", choices=sorted(REGISTERED_CONFIGS)
    )
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--generation_examples", type=int, default=5000)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="cosal_bench_")
    try:
        result = run_benchmark(
            make_config(args.config), args.generation_examples, data_dir
        )
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with tf.io.gfile.GFile(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
