r"""Colours a CoSaL silhouette image as a text says, with a trained model.

  python -m experiments.edit --model=runs/demo --image=in.png \
      --text="circle is red. blue below circle. ..." --out=out.png \
      [--scale=8] [--explain=explain.png]

--model takes a .keras file, a training workdir or an export directory. The
image is a 48 x 48 8-bit RGB PNG of black shapes on white; the text is nine
3-token sentences separated by '.', ';' or new lines (or --text_file=PATH).
--explain writes a Figure 5 style picture: per step and cell, the sentence
with the largest attention weight. To get an input to try:

  python -m experiments.edit --write_example=example/

writes example/in.png, example/text.txt and example/target.png (the truth).
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
from lbie_tf.core import errors  # noqa: E402
from lbie_tf.cosal import editing  # noqa: E402

_MODEL = flags.DEFINE_string(
    "model", None, "A .keras file, a training workdir or an export directory."
)
_IMAGE = flags.DEFINE_string(
    "image", None, "Input PNG: 48x48 8-bit RGB, black shapes on white."
)
_TEXT = flags.DEFINE_string(
    "text", None, "Nine CoSaL sentences separated by '.', ';' or new lines."
)
_TEXT_FILE = flags.DEFINE_string(
    "text_file", None, "A file holding the nine sentences (instead of --text)."
)
_OUT = flags.DEFINE_string("out", None, "Output PNG: the coloured image.")
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
    image_path, text_path, target_path = editing.write_example(
        _WRITE_EXAMPLE.value,
        num_direct=_EXAMPLE_NUM_DIRECT.value,
        index=_EXAMPLE_INDEX.value,
    )
    print(f"input image:  {image_path}")
    print(f"description:  {text_path}")
    print(f"true colours: {target_path}")
    print(
        "try: python -m experiments.edit --model=<model> "
        f"--image={image_path} --text_file={text_path} --out=out.png"
    )


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
    artifacts = editing.edit(
        model_path=_MODEL.value,
        image_path=_IMAGE.value,
        text=_read_text(),
        out_path=_OUT.value,
        explain_path=_EXPLAIN.value,
        scale=_SCALE.value,
    )
    print(f"edited image: {os.path.abspath(artifacts.out_path)}")
    if artifacts.explain_path is not None:
        print(f"explanation:  {os.path.abspath(artifacts.explain_path)}")
    print("colour per cell:")
    names = artifacts.cell_colors
    for row in range(3):
        cells = names[3 * row : 3 * row + 3]
        print(("  " + " | ".join(f"{n:11s}" for n in cells)).rstrip())


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
