r"""The paper's Figure 7 as a command: one photograph recoloured with "the
flower is white / red / orange / yellow / blue / purple in color".

  python -m experiments.flowers_figure7 --model=EXPORT --image=photo.jpg \
      --out=figure7.png

Writes the 7-panel picture (grey input, then one panel per colour marked
hit or miss) to --out and prints, as its last line, one JSON object with
the per-colour dominant colour, hits and `hit_rate` (the colour of the
flower region judged as in the README's "Flowers colorization" protocol;
--mask=PNG gives the region instead, non-zero = flower).
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from experiments import cli  # noqa: E402
from lbie_tf.core import errors  # noqa: E402

_MODEL = flags.DEFINE_string(
    "model", None, "A flowers export (experiments.export) or workdir."
)
_IMAGE = flags.DEFINE_string("image", None, "The photograph (PNG or JPEG).")
_OUT = flags.DEFINE_string("out", "figure7.png", "The picture to write.")
_MASK = flags.DEFINE_string(
    "mask", None, "Optional PNG of the photo's size: non-zero = the flower."
)
_ACCEPTED = "expected a PNG or JPEG file"


def _run(argv):
    if len(argv) > 1:
        raise errors.UsageError(f"unexpected arguments {argv[1:]}.")
    if not _MODEL.value or not _IMAGE.value:
        raise errors.UsageError("--model and --image are required.")
    from lbie_tf.core import images
    from lbie_tf.flowers import editing, figure7

    photo = images.read_image_file(_IMAGE.value, _ACCEPTED)
    mask = None
    if _MASK.value:
        height, width = photo.shape[:2]
        mask = images.read_image_file(
            _MASK.value,
            f"expected a mask PNG of the photo's size {width}x{height}",
            size=(width, height),
        ).max(axis=-1)
        mask = mask > 0
    directory = os.path.dirname(os.path.abspath(_OUT.value))
    if not os.path.isdir(directory):
        raise errors.OutputError(
            f"cannot write {_OUT.value!r}: {directory!r} does not exist."
        )
    results = figure7.run_figure7(editing.colorizer(_MODEL.value), photo, mask)
    figure7.figure7_panel(photo, results, _OUT.value)
    summary = {
        "figure": os.path.abspath(_OUT.value),
        "hit_rate": results["hit_rate"],
        "per_color": [
            {
                key: entry[key]
                for key in ("color", "caption", "dominant_color", "hit")
            }
            for entry in results["per_color"]
        ],
    }
    print(json.dumps(summary))


def main(argv):
    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
