r"""Edits an image as a text says, with a trained model of any task.

  python -m experiments.edit --model=runs/demo --image=in.png \
      --text="circle is red. blue below circle. ..." --out=out.png \
      [--scale=8] [--explain=explain.png]

--model takes a .keras file, a training workdir or an export directory; the
task comes from the export's task.json or the workdir's config.json (a bare
.keras file: --task). CoSaL: the image is 48 x 48 pixels of black
shapes on white, a PNG or JPEG in any mode:
grey, 1-bit, palette and 16-bit images are converted to 8-bit RGB and
transparency is laid over white (DEVIATIONS.md, "Edit CLI input"). An image
of more than 40,000,000 pixels (lbie_tf.core.images.MAX_IMAGE_PIXELS) is
refused from its header, before it is decoded, so a decompression bomb costs
nothing. The text is nine 3-token sentences separated by '.', ';' or new
lines (or --text_file=PATH).
--explain writes a Figure 5 style picture: per step and cell, the sentence
with the largest attention weight. To get an input to try:

  python -m experiments.edit --write_example=example/

writes example/in.png, example/text.txt and example/target.png (the truth).
ReferIt (an export or workdir of that task): --image is any photo, --text a
referring expression ("the man on the left"); --out gets the mask at the
photo's size and <out>_overlay.png the mask over the photo.
Flowers (an export or workdir of that task): --image is any photo, --text a
caption ("this flower has red petals"); --out gets the photo coloured at its
own size (the model's ab on the photo's own lightness) and <out>_panels.png
grey input | coloured | original.
Bad input prints one line `error: ...` to stderr and exits with status 2;
nothing is written to --out or --explain then.
"""

import os

# The command reports its own errors in one line; TensorFlow's native log
# lines (CUDA probing, oneDNN notices) would only bury them. Set
# TF_CPP_MIN_LOG_LEVEL=0 to see them again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from experiments import cli  # noqa: E402
from lbie_tf import tasks  # noqa: E402
from lbie_tf.core import errors, evaluate_lib  # noqa: E402
from lbie_tf.core import task as task_lib  # noqa: E402

_TASK = flags.DEFINE_string(
    "task",
    "cosal",
    f"The task of a bare .keras file or of --write_example; one of "
    f"{tasks.NAMES}. Workdirs and exports name their task themselves.",
)
_MODEL = flags.DEFINE_string(
    "model", None, "A .keras file, a training workdir or an export directory."
)
_IMAGE = flags.DEFINE_string(
    "image",
    None,
    "Input PNG or JPEG, any mode (converted). CoSaL: 48x48, black shapes "
    "on white; ReferIt and flowers: any photo.",
)
_TEXT = flags.DEFINE_string(
    "text",
    None,
    "CoSaL: nine sentences separated by '.', ';' or new lines; ReferIt: "
    "a referring expression; flowers: a caption naming colours.",
)
_TEXT_FILE = flags.DEFINE_string(
    "text_file", None, "A file holding the text (instead of --text)."
)
_OUT = flags.DEFINE_string(
    "out",
    None,
    "Output PNG. CoSaL: the coloured image; ReferIt: the mask at the "
    "photo's size, with <out>_overlay.png beside it; flowers: the photo "
    "coloured at its size, with <out>_panels.png beside it.",
)
_SCALE = flags.DEFINE_integer(
    "scale", 1, "Enlarge --out this many times (nearest neighbour), 1..64."
)
_EXPLAIN = flags.DEFINE_string(
    "explain",
    None,
    "Optional PNG: which sentence each step attended to, per cell.",
)
_WRITE_EXAMPLE = flags.DEFINE_string(
    "write_example",
    None,
    "Instead of editing, write in.png, text.txt and target.png of a CoSaL "
    "test example into this directory.",
)
_EXAMPLE_NUM_DIRECT = flags.DEFINE_integer(
    "example_num_direct", 8, "Direct sentences in the --write_example text."
)
_EXAMPLE_INDEX = flags.DEFINE_integer(
    "example_index", 0, "Which test example --write_example writes."
)


def _write_example():
    task = task_lib.get_task_class(_TASK.value)()
    example = task.write_edit_example(
        _WRITE_EXAMPLE.value,
        {
            "num_direct": _EXAMPLE_NUM_DIRECT.value,
            "index": _EXAMPLE_INDEX.value,
        },
    )
    print("\n".join(example.lines))


def _read_text():
    if (_TEXT.value is None) == (_TEXT_FILE.value is None):
        raise errors.UsageError(
            "pass the description with exactly one of --text or --text_file."
        )
    if _TEXT.value is not None:
        return _TEXT.value
    try:
        with open(_TEXT_FILE.value, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise errors.TextError(
            f"cannot read --text_file={_TEXT_FILE.value!r} "
            f"({errors.one_line(error)}); expected a UTF-8 text file."
        ) from None


def _edit():
    for flag in (_MODEL, _IMAGE, _OUT):
        if flag.value is None:
            raise errors.UsageError(
                f"--{flag.name} is required (or use --write_example=DIR); "
                "see --help."
            )
    name = evaluate_lib.task_name_of(_MODEL.value, default=_TASK.value)
    task = task_lib.get_task_class(name)()
    lines = task.edit_files(
        _MODEL.value,
        _IMAGE.value,
        _read_text(),
        _OUT.value,
        {"explain": _EXPLAIN.value, "scale": _SCALE.value},
    )
    print("\n".join(lines))


def _run(argv):
    if len(argv) > 1:
        raise errors.UsageError(
            f"unexpected arguments {argv[1:]}; every input is a --flag, "
            "see --help."
        )
    if _WRITE_EXAMPLE.value is not None:
        _write_example()
    else:
        _edit()


def main(argv):
    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
