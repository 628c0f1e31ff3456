"""Times the synthetic ReferIt and flowers download writers; prints JSON.

Usage:
  python -m benchmarks.synthetic_writers [--referit_train_images=2000]
      [--referit_test_images=500] [--flowers_classes=102]
      [--flowers_images_per_class=10]
      [--out=results/synthetic_writers_benchmark.json]

Each writer fills a temporary directory that is removed afterwards. The
tests use these writers at a few dozen images; the benchmark runs them at
thousands, the scale of the synthetic training runs.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

from data_builders.oxford_flowers_captions import layout as flowers_layout
from data_builders.oxford_flowers_captions import synthetic as flowers_synthetic
from data_builders.referit import layout as referit_layout
from data_builders.referit import synthetic as referit_synthetic


def _timed(write, directory, image_dir):
    start = time.perf_counter()
    summary = write(directory)
    wall_s = time.perf_counter() - start
    disk_bytes = sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
    )
    # The summaries' splits overlap (trainval holds train and val), so the
    # images are counted on disk.
    images = len(os.listdir(os.path.join(directory, image_dir)))
    return {
        "images": images,
        "wall_s": round(wall_s, 2),
        "images_per_s": round(images / wall_s, 1),
        "mib_on_disk": round(disk_bytes / 2**20, 1),
        "splits": summary,
    }


def run_benchmark(
    referit_train, referit_test, flowers_classes, flowers_per_class
):
    """Returns the figures of both writers, each run once."""
    scratch = tempfile.mkdtemp(prefix="synthetic_writers_")
    try:
        referit = _timed(
            lambda d: referit_synthetic.write_dataset(
                d, referit_train, referit_test, 0
            ),
            os.path.join(scratch, "referit"),
            referit_layout.IMAGE_DIR,
        )
        flowers = _timed(
            lambda d: flowers_synthetic.write_synthetic_download(
                d,
                num_classes=flowers_classes,
                num_images_per_class=flowers_per_class,
            ),
            os.path.join(scratch, "flowers"),
            flowers_layout.IMAGE_DIR,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "referit": referit,
        "flowers": flowers,
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referit_train_images", type=int, default=2000)
    parser.add_argument("--referit_test_images", type=int, default=500)
    parser.add_argument("--flowers_classes", type=int, default=102)
    parser.add_argument("--flowers_images_per_class", type=int, default=10)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    try:
        result = run_benchmark(
            args.referit_train_images,
            args.referit_test_images,
            args.flowers_classes,
            args.flowers_images_per_class,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
