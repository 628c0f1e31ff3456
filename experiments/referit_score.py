"""Scores predicted ReferIt masks of any method as Hu et al. 2016 did.

  python -m experiments.referit_score --pred_dir=DIR --manual_dir=DIR \
      --split=test

--pred_dir holds one PNG per (region, expression) pair of
referit_query_<split>.json, named <imcrop>__<expression index>.png, at the
image's original size (non-zero = object); --manual_dir is Hu et al.'s
layout (referit_query_<split>.json and mask/<imcrop>.mat). Progress goes to
stderr; the last line of stdout is one JSON object: num_pairs, overall_iou,
precision@0.5 .. precision@0.9 and mean_iou, as fractions.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

_PRED_DIR = flags.DEFINE_string(
    "pred_dir",
    None,
    "Predicted masks: <imcrop>__<expression index>.png at original size.",
    required=True,
)
_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir",
    None,
    "Hu et al.'s ReferIt layout: referit_query_<split>.json and mask/.",
    required=True,
)
_SPLIT = flags.DEFINE_string(
    "split", "test", "The query file to score: referit_query_<split>.json."
)
_PROGRESS_EVERY = flags.DEFINE_integer(
    "progress_every", 1000, "Pairs between two progress lines on stderr."
)


def progress_printer(stream):
    """progress(done, total) that writes `scored done / total pairs`: one
    line rewritten in place on a terminal, plain lines otherwise (a log
    file or a pipe keeps every line)."""
    interactive = stream.isatty()

    def progress(done, total):
        line = f"scored {done} / {total} pairs"
        if interactive:
            stream.write("\r" + line + ("\n" if done == total else ""))
        else:
            stream.write(line + "\n")
        stream.flush()

    return progress


def _run(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from lbie_tf.core import errors, runtime

    # TensorFlow's C++ start-up lines would break the one-line errors.
    runtime.import_tensorflow_quietly()
    from lbie_tf.referit import evaluation

    if _PROGRESS_EVERY.value < 1:
        raise errors.UsageError(
            "--progress_every must be at least 1; received "
            f"{_PROGRESS_EVERY.value}."
        )
    results = evaluation.score_prediction_dir(
        _PRED_DIR.value,
        _MANUAL_DIR.value,
        _SPLIT.value,
        progress=progress_printer(sys.stderr),
        progress_every=_PROGRESS_EVERY.value,
    )
    print(json.dumps(results))


def main(argv):
    from experiments import cli

    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
