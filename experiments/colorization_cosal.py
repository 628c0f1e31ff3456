r"""Trains the isoluminant CoSaL proof that the caption steers the colour,
and writes its result.

  python -m experiments.colorization_cosal --workdir=runs/colorization_cosal

Trains (or resumes, or only re-reads a finished run) the flowers
colorization GAN and its no-text baseline on CoSaL recoloured with an
isoluminant palette (experiments/configs/flowers_cosal.py), each in
<workdir>/<model>, and writes results/colorization_cosal.md and .json:
the share of test shapes whose colour, read from the predicted ab, is the
true one, with text (`accuracy_text`) and without (`accuracy_no_text`).
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
    "results_dir", "results", "Where colorization_cosal.md/.json go."
)


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
    rows = []
    for model in MODELS:
        config = cli.apply_overrides(flowers_cosal.get_config(model), overrides)
        workdir = os.path.join(_WORKDIR.value, model)
        results = train_lib.train_and_evaluate(config, workdir)
        command = (
            "python -m experiments.train "
            f"--config=experiments/configs/flowers_cosal.py:{model} "
            f"--workdir={workdir} {flags_text}"
        ).strip()
        rows.append({**results, "model": model, "command": command})
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


def main(argv):
    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
