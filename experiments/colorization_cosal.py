r"""Trains the isoluminant CoSaL proof that the caption steers the colour,
and writes its result.

  python -m experiments.colorization_cosal --workdir=runs/colorization_cosal

Trains (or resumes, or only re-reads a finished run) the flowers
colorization GAN and its no-text baseline on CoSaL recoloured with an
isoluminant palette (experiments/configs/flowers_cosal.py), each in
<workdir>/<model>, and writes results/colorization_cosal.md and .json:
the share of test shapes whose colour, read from the predicted ab, is the
true one, with text (`accuracy_text`) and without (`accuracy_no_text`),
and results/colorization_cosal.png: the first test images as grey input |
with text | without text | original, caption under them.
`--config.x=y` overrides apply to both models.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from experiments import cli  # noqa: E402
from experiments.configs import flowers_cosal  # noqa: E402
from lbie_tf.core import errors  # noqa: E402

MODELS = ("lbie", "no_text")
_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/flowers_cosal.py:lbie",
    "The config whose fields --config.x=y overrides are parsed against.",
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "runs/colorization_cosal", "Runs go to <workdir>/<model>."
)
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", "results", "Where colorization_cosal.md/.json/.png go."
)
_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", 6, "Test images in colorization_cosal.png."
)
PICTURE_FILE = "colorization_cosal.png"
# The 48 x 48 panels enlarged 4 times; a caption of nine sentences takes
# about three lines at that width.
PICTURE_SCALE = 4
PICTURE_CAPTION_LINES = 4


def write_picture(config, workdirs, num_examples, path):
    """The first `num_examples` test images colourised by the finished
    runs in `workdirs` (text model, then no-text baseline) as one PNG."""
    import numpy as np
    from PIL import Image

    from lbie_tf.core import artifacts
    from lbie_tf.core import task as task_lib
    from lbie_tf.flowers import summaries

    task = task_lib.build_task(config)
    inputs, targets = next(
        iter(task.build_inputs("test", False, batch_size=num_examples))
    )
    colorized = [
        summaries.colorize(
            task.load_model(
                os.path.join(workdir, artifacts.MODEL_FILE_NAME)
            ).generator,
            inputs,
        )
        for workdir in workdirs
    ]
    rows = summaries.grid_rows(
        inputs,
        targets,
        *colorized,
        scale=PICTURE_SCALE,
        caption_lines=PICTURE_CAPTION_LINES,
    )
    with artifacts.atomic_path(path, suffix=".png") as temporary:
        Image.fromarray(np.concatenate(list(rows), axis=0)).save(temporary)


def _table(title, key_name, keys, names, columns, number_format):
    """Markdown lines: `title`, then a table with a row per key and a
    column per name, from the `columns` dicts ("-" for a key a column
    lacks or holds None)."""
    lines = [
        "",
        title,
        "",
        f"| {key_name} | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key in keys:
        cells = (column.get(key) for column in columns)
        lines.append(
            f"| {key} | "
            + " | ".join(
                "-" if cell is None else format(cell, number_format)
                for cell in cells
            )
            + " |"
        )
    return lines


def markdown(result, rows):
    """The results file for people: both accuracies, chance, commands."""
    chance = 1.0 / result["num_colors"]
    lines = [
        "# Text steers colour: isoluminant CoSaL",
        "",
        "CoSaL images recoloured with an isoluminant palette (every shape "
        "colour at L = 65, the background white): the grey input shows "
        "where the shapes are and nothing of their colours, so only the "
        "caption can tell them. Score: per test shape, the mean predicted "
        "ab over its pixels read as the nearest palette colour, against "
        "the shape's true colour.",
        "",
        "| model | shape colour accuracy | L1 (ab, Lab units) | epochs | "
        "s (last command) |",
        "|---|---|---|---|---|",
    ]
    names = [row["model"] for row in rows]
    by_shape = _table(
        "By shape (the shape names share words: four ellipses, two triangles):",
        "shape",
        list(rows[0]["shape_color_accuracy_by_shape"]),
        names,
        [row["shape_color_accuracy_by_shape"] for row in rows],
        ".3f",
    )
    by_epoch = _table(
        "Test accuracy during training (every "
        "`train.eval_every_epochs`, from the runs' TensorBoard logs):",
        "epoch",
        sorted(set().union(*(row["accuracy_by_epoch"] for row in rows))),
        names,
        [row["accuracy_by_epoch"] for row in rows],
        ".4f",
    )
    picture = [
        "",
        "The first test images: grey input | with text | without text | "
        "original, the caption under them.",
        "",
        f"![isoluminant CoSaL colourised with and without text]"
        f"({PICTURE_FILE})",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['shape_color_accuracy']:.4f} | "
            f"{row['l1_lab']:.2f} | {row['epochs']} | {row['wall_s']:.0f} |"
        )
    lines += [
        "",
        f"{result['num_colors']} colours (chance {chance:.4f}), "
        f"{result['test_images']} test images, "
        f"{rows[0]['num_shapes']} shapes.",
        *by_shape,
        *by_epoch,
        *picture,
        "",
        "Command (both rows):",
        "",
        f"    {result['command']}",
        "",
        "Each row alone:",
        "",
        *[f"    {row['command']}" for row in rows],
        "",
    ]
    return "\n".join(lines)


def _run(argv):
    if len(argv) > 1:
        raise errors.UsageError(f"unexpected arguments {argv[1:]}.")
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import artifacts, train_lib

    overrides = cli.config_overrides(flags.FLAGS)
    flags_text = " ".join(f"--config.{k}={v}" for k, v in overrides.items())
    rows, workdirs = [], []
    for model in MODELS:
        config = cli.apply_overrides(flowers_cosal.get_config(model), overrides)
        workdir = os.path.join(_WORKDIR.value, model)
        workdirs.append(workdir)
        results = train_lib.train_and_evaluate(config, workdir)
        curve = train_lib.epoch_metrics(workdir).get(
            "test_shape_color_accuracy", {}
        )
        command = (
            "python -m experiments.train "
            f"--config=experiments/configs/flowers_cosal.py:{model} "
            f"--workdir={workdir} {flags_text}"
        ).strip()
        rows.append(
            {
                **results,
                "model": model,
                "command": command,
                "accuracy_by_epoch": curve,
            }
        )
        print(
            f"{model}: shape colour accuracy "
            f"{results['shape_color_accuracy']:.4f}",
            flush=True,
        )
    result = {
        "accuracy_text": rows[0]["shape_color_accuracy"],
        "accuracy_no_text": rows[1]["shape_color_accuracy"],
        "num_colors": rows[0]["num_colors"],
        "test_images": rows[0]["num_examples"],
        "test_shapes": rows[0]["num_shapes"],
        "command": (
            "python -m experiments.colorization_cosal "
            f"--workdir={_WORKDIR.value} {flags_text}"
        ).strip(),
        "runs": [
            {
                key: row[key]
                for key in (
                    "model",
                    "shape_color_accuracy",
                    "shape_color_accuracy_by_shape",
                    "accuracy_by_epoch",
                    "l1",
                    "l1_lab",
                    "epochs",
                    "wall_s",
                    "command",
                )
            }
            for row in rows
        ],
    }
    os.makedirs(_RESULTS_DIR.value, exist_ok=True)
    artifacts.write_json(
        os.path.join(_RESULTS_DIR.value, "colorization_cosal.json"), result
    )
    artifacts.write_text(
        os.path.join(_RESULTS_DIR.value, "colorization_cosal.md"),
        markdown(result, rows),
    )
    write_picture(
        cli.apply_overrides(flowers_cosal.get_config(MODELS[0]), overrides),
        workdirs,
        _NUM_EXAMPLES.value,
        os.path.join(_RESULTS_DIR.value, PICTURE_FILE),
    )


def main(argv):
    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
