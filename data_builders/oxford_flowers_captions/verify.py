"""Checks an Oxford-102 flowers + captions download without building it.

Usage:
  python -m data_builders.oxford_flowers_captions.verify --manual_dir=DIR \
      [--expect_full] [--manifest=PATH]

Exit status 0 when every file is present, readable and consistent; 2 (with
one line "error: ..." on stderr naming the first few problems and their
count) otherwise. The sha256 manifest (sha256sum's format, paths relative
to DIR) goes to PATH with --manifest, else to stdout before the summary.
"""

import argparse
import sys

import tensorflow as tf

from data_builders.oxford_flowers_captions import layout

_SHOWN_FILES = 5


def manifest_lines(report):
    """The sha256sum lines ("<hex>  <path>") of every file the check read."""
    return [f"{entry.sha256}  {entry.path}" for entry in report.files]


def _compared(report, actual, expected):
    if report.compared:
        return "match" if actual == expected else "differ"
    return "not compared (a subset; --expect_full compares)"


def summary_lines(report, manifest_path=None):
    """What a clean download holds, for people: one line per fact."""
    lines = [
        f"ok: {report.manual_dir} holds a readable, consistent Oxford-102 "
        "flowers download with Reed et al.'s captions"
    ]
    lines.append(
        f"  images: {report.num_images:,} labelled, classes: "
        f"{report.num_classes:,}; full download "
        f"{layout.FULL_RELEASE_IMAGES:,} images / {layout.NUM_CLASSES} "
        "classes: "
        + _compared(
            report,
            (report.num_images, report.num_classes),
            (layout.FULL_RELEASE_IMAGES, layout.NUM_CLASSES),
        )
    )
    modes = ", ".join(
        f"{count:,} {mode}"
        for mode, count in sorted(report.image_modes.items())
    )
    lines.append(f"  JPEG modes: {modes}")
    oxford = ", ".join(f"{k} {v:,}" for k, v in report.oxford_counts.items())
    lines.append(f"  Oxford split (setid.mat): {oxford}")
    for split, counts in report.splits.items():
        line = (
            f"  {split}: {counts.classes:,} classes, {counts.images:,} "
            f"images, {counts.captions:,} captions"
        )
        if counts.full_release is not None:
            line += (
                f"; Reed et al.'s {counts.full_release} classes: "
                + _compared(report, counts.classes, counts.full_release)
            )
        lines.append(line)
        if counts.fewer_captions:
            shown = ", ".join(counts.fewer_captions[:_SHOWN_FILES])
            if len(counts.fewer_captions) > _SHOWN_FILES:
                shown += ", ..."
            lines.append(
                f"    {len(counts.fewer_captions):,} images with fewer than "
                f"{layout.CAPTIONS_PER_IMAGE} captions (accepted): {shown}"
            )
    if report.non_ascii_captions:
        lines.append(
            f"  {report.non_ascii_captions:,} captions hold non-ASCII "
            "characters (kept as written)"
        )
    lines.extend(f"  note: {note}" for note in report.notes)
    size = sum(entry.size for entry in report.files)
    amount = (
        f"{size / 2**20:,.1f} MiB"
        if size >= 2**20
        else f"{size / 2**10:.1f} KiB"
    )
    where = manifest_path or "printed above"
    lines.append(
        f"  files: {len(report.files):,} read, {amount}; "
        f"sha256 manifest: {where} (check later with: cd "
        f"{report.manual_dir} && sha256sum -c MANIFEST)"
    )
    return lines


def main(argv=None):
    """Runs the check; returns the exit status (0 clean, 2 problems)."""
    parser = argparse.ArgumentParser(
        prog="python -m data_builders.oxford_flowers_captions.verify",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--manual_dir", required=True, help="the download to check"
    )
    parser.add_argument(
        "--expect_full",
        action="store_true",
        help="require the full download's counts even for a small copy",
    )
    parser.add_argument(
        "--manifest", help="write the sha256 manifest here, not to stdout"
    )
    args = parser.parse_args(argv)

    report = layout.check_download(
        args.manual_dir, expect_full=args.expect_full, compute_sha256=True
    )
    if report.problems:
        print(f"error: {report.message()}", file=sys.stderr)
        return 2
    lines = manifest_lines(report)
    if args.manifest:
        with tf.io.gfile.GFile(args.manifest, "w") as f:
            f.write("".join(f"{line}\n" for line in lines))
    else:
        print("\n".join(lines))
    print("\n".join(summary_lines(report, args.manifest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
