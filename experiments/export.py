r"""Exports a trained model of any task: .keras, SavedModel and task.json.

  python -m experiments.export --model=runs/demo --out=runs/demo/export

--model takes a .keras file or a training workdir. The SavedModel's
`serving_default` signature takes `image` (uint8 [B, 48, 48, 3]) and
`sentences` (string [B, 9], e.g. "circle is red") and returns `labels`,
`colored_image` and, for models with attention, `attention_weights`.
`serving_bytes` takes `image_bytes` (string [B]: PNG or JPEG files) and
`text` (string [B]: the nine sentences in one string, separated by '.', ';'
or new lines) and returns `png_bytes` (string [B]: the coloured image as a
PNG), `labels` and `attention_weights`; a bad request fails that call alone
with InvalidArgumentError. Both need only TensorFlow to load
(tf.saved_model.load). Bad input prints one line `error: ...` to stderr and
exits with status 2.
"""

import os

# The command reports its own errors in one line; TensorFlow's native log
# lines (CUDA probing, oneDNN notices) would only bury them. Set
# TF_CPP_MIN_LOG_LEVEL=0 to see them again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from experiments import cli  # noqa: E402
from lbie_tf.core import errors  # noqa: E402

_MODEL = flags.DEFINE_string(
    "model", None, "A .keras file or a training workdir (holds model.keras)."
)
_TASK = flags.DEFINE_string(
    "task",
    None,
    "The task of a bare .keras file (one without config.json beside it); "
    "default: cosal. Workdirs and exports name their task themselves.",
)
_OUT = flags.DEFINE_string(
    "out",
    None,
    "Export directory to write (new, empty, or an earlier export).",
)


def _run(argv):
    if len(argv) > 1:
        raise errors.UsageError(
            f"unexpected arguments {argv[1:]}; pass --model and --out."
        )
    for flag in (_MODEL, _OUT):
        if flag.value is None:
            raise errors.UsageError(f"--{flag.name} is required; see --help.")
    if not flags.FLAGS["verbosity"].present:
        # SavedModel writing logs INFO lines (assets, fingerprint, sharding)
        # through absl; --verbosity=0 shows them again.
        logging.set_verbosity(logging.WARNING)
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import export_lib

    paths = export_lib.export_model(
        _MODEL.value, _OUT.value, task_name=_TASK.value
    )
    print(f"export directory: {paths.export_dir}")
    print(f"keras model:      {paths.keras_path}")
    print(f"SavedModel:       {paths.saved_model_dir}")
    print(f"task:             {paths.task_path}")
    print(
        "  signature serving_default: image uint8 [B, S, S, 3], sentences "
        "string [B, 9] -> labels, colored_image (+ attention_weights)"
    )
    print(
        "  signature serving_bytes:   image_bytes string [B] (PNG or JPEG), "
        "text string [B] -> png_bytes string [B], labels "
        "(+ attention_weights)"
    )


def main(argv):
    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
