"""Checks a ReferIt manual download without building it; prints a manifest.

Usage:
  python -m data_builders.referit.verify --manual_dir=DIR \
      [--split=trainval,test] [--expect_full] [--manifest=PATH]

Exit status 0 when every file is present, readable and consistent; 2 (with
one line "error: ..." on stderr naming the first few problems and their
count) otherwise. The sha256 manifest (sha256sum's format, paths relative
to DIR) goes to PATH with --manifest, else to stdout before the summary.
"""

import argparse
import sys

import tensorflow as tf

from data_builders.referit import layout


def _split_list(text):
    splits = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(set(splits) - set(layout.SPLITS))
    if not splits or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(layout.SPLITS)}"
            f", got {text!r}"
        )
    return splits


def manifest_lines(report):
    """The sha256sum lines ("<hex>  <path>") of every file the check read."""
    return [f"{entry.sha256}  {entry.path}" for entry in report.files]


def summary_lines(report, manifest_path=None):
    """What a clean download holds, for people: one line per split."""
    lines = [
        f"ok: {report.manual_dir} holds a readable, consistent ReferIt "
        "download (Hu et al.'s text_objseg layout)"
    ]
    for split, counts in report.splits.items():
        line = (
            f"  {split}: {counts.images:,} images, {counts.regions:,} "
            f"regions, {counts.expressions:,} expressions; image list "
            f"{counts.imlist_images:,} images"
        )
        if counts.unlisted_images:
            line += f" ({counts.unlisted_images:,} query images not in it)"
        if counts.full_release is None:
            line += "; no published count"
        else:
            images, expressions = counts.full_release
            release = f"{images:,} images / {expressions:,} expressions"
            if counts.compared:
                line += f"; full release {release}: match"
            else:
                line += (
                    f"; full release {release}: not compared (a subset; "
                    "--expect_full compares)"
                )
        lines.append(line)
    lines.append(f"  vocabulary: {report.vocabulary_size:,} tokens")
    images = sum(
        e.path.startswith(f"{layout.IMAGE_DIR}/") for e in report.files
    )
    masks = sum(e.path.startswith(f"{layout.MASK_DIR}/") for e in report.files)
    others = len(report.files) - images - masks
    size = sum(e.size for e in report.files)
    where = manifest_path or "printed above"
    lines.append(
        f"  files: {others} annotation files, {images:,} images, "
        f"{masks:,} masks, {size / 2**20:,.1f} MiB; sha256 manifest: {where}"
        f" (check later with: cd {report.manual_dir} && sha256sum -c "
        "MANIFEST)"
    )
    return lines


def main(argv=None):
    """Runs the check; returns the exit status (0 clean, 2 problems)."""
    parser = argparse.ArgumentParser(
        prog="python -m data_builders.referit.verify",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--manual_dir", required=True, help="the download to check"
    )
    parser.add_argument(
        "--split",
        type=_split_list,
        default=layout.SPLITS,
        help=f"comma-separated splits to check (default: "
        f"{','.join(layout.SPLITS)})",
    )
    parser.add_argument(
        "--expect_full",
        action="store_true",
        help="require Hu et al.'s counts even for a small copy",
    )
    parser.add_argument(
        "--manifest", help="write the sha256 manifest here, not to stdout"
    )
    args = parser.parse_args(argv)

    report = layout.check_download(
        args.manual_dir,
        args.split,
        expect_full=args.expect_full,
        compute_sha256=True,
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
