r"""Trains and evaluates paper Table 2 cells; writes results/table2.{md,json}.

  python -m experiments.table2 --cells=all --workdir=runs/table2
  python -m experiments.table2 --cells=paper_t4_attn_d4,paper_t1_attn_d4 \
      --config.train.epochs=5 --config.data.train_examples=5000

`--config.x=y` overrides apply to every cell; they are parsed against the
config that --config names (default: the paper_t4_attn_d8 cell), so an
original-family field such as model.decoder needs
--config=experiments/configs/cosal.py:original_t4_attn_d8.

Cells are named `<paper|original>_t<1|4>_<attn|noattn>_d<4|6|8>` (see
experiments/configs/cosal.py); `--cells=paper` or `--cells=original` runs
one family's 9 cells. Each cell's row is merged into results/table2.json
and results/table2.md as soon as it finishes, so a subset run adds to the
table.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from experiments import cli  # noqa: E402
from experiments.configs import cosal  # noqa: E402
from lbie_tf.cosal import table2  # noqa: E402

_CELLS = flags.DEFINE_string(
    "cells",
    "paper",
    "Comma-separated cell names, or 'all' (18 cells), 'paper' or "
    "'original' (9 cells each).",
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "runs/table2", "Runs go to <workdir>/<cell>."
)
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", "results", "Where table2.md and table2.json are written."
)
_CONFIG = config_flags.DEFINE_config_file(
    "config",
    "experiments/configs/cosal.py:paper_t4_attn_d8",
    "The config whose fields --config.x=y overrides are parsed against; "
    "the overrides then apply to every cell.",
    lock_config=True,
)
_SKIP_DONE = flags.DEFINE_bool(
    "skip_done",
    True,
    "Skip cells whose workdir already holds eval.json.",
)


def select_cells(spec):
    """Cell names from the --cells flag."""
    cells = table2.all_cells()
    if spec == "all":
        return cells
    if spec in table2.FAMILIES:
        return [c for c in cells if c.startswith(spec + "_")]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        table2.parse_cell_name(name)
    return names


def cell_settings(name, config):
    """The settings column of a cell's row in table2.md."""
    default_epochs = cosal.get_config(name).train.epochs
    reduced = (
        f" (REDUCED from the default {default_epochs})"
        if config.train.epochs < default_epochs
        else ""
    )
    model = config.model
    gate = head = ""
    if model.family == "paper" and model.num_steps > 1:
        if model.termination_warmup > 0:
            gate = (
                f", gate warm-up {model.termination_warmup:.2g} of training "
                f"({model.termination_warmup_selection})"
            )
    if model.family == "original":
        head = f", decoder {model.decoder}"
    return (
        f"{config.data.name}, batch {config.train.batch_size}, "
        f"lr {config.train.learning_rate}, "
        f"fg weight {config.train.foreground_weight}, "
        f"{config.train.epochs} epochs{reduced}{gate}{head}"
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    configs, commands, settings = {}, {}, {}
    overrides = cli.config_overrides(flags.FLAGS)
    try:
        cells = select_cells(_CELLS.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    for name in cells:
        workdir = os.path.join(_WORKDIR.value, name)
        if _SKIP_DONE.value and os.path.exists(
            os.path.join(workdir, "eval.json")
        ):
            print(f"{name}: {workdir}/eval.json exists, skipped.")
            continue
        config = cli.exit_on_user_error(
            cli.apply_overrides, cosal.get_config(name), overrides
        )
        configs[name] = config
        flags_text = " ".join(
            f"--config.{field}={value}" for field, value in overrides.items()
        )
        commands[name] = (
            "python -m experiments.train "
            f"--config=experiments/configs/cosal.py:{name} "
            f"--workdir={workdir} {flags_text}"
        ).strip()
        settings[name] = cell_settings(name, config)
    table2.run_cells(
        configs, _WORKDIR.value, commands, _RESULTS_DIR.value, settings
    )
    print(
        f"Results: {os.path.join(_RESULTS_DIR.value, 'table2.md')} and "
        f"{os.path.join(_RESULTS_DIR.value, 'table2.json')}"
    )


if __name__ == "__main__":
    app.run(main)
