r"""Trains and evaluates paper Table 2 cells; writes results/table2.{md,json}.

  python -m experiments.table2 --cells=all --workdir=runs/table2
  python -m experiments.table2 --cells=paper_t4_attn_d4,paper_t1_attn_d4 \
      --override=train.epochs=5 --override=data.train_examples=5000

Cells are named `<paper|original>_t<1|4>_<attn|noattn>_d<4|6|8>` (see
experiments/configs/cosal.py); `--cells=paper` or `--cells=original` runs
one family's 9 cells. Each cell's row is merged into results/table2.json
and results/table2.md as soon as it finishes, so a subset run adds to the
table.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from experiments.configs import cosal  # noqa: E402
from lbie_tf import table2_lib  # noqa: E402

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
_OVERRIDES = flags.DEFINE_multi_string(
    "override",
    [],
    "Config override applied to every cell, as field=value (e.g. "
    "train.epochs=5); repeat the flag for several.",
)
_SKIP_DONE = flags.DEFINE_bool(
    "skip_done",
    True,
    "Skip cells whose workdir already holds eval.json.",
)


def select_cells(spec):
    """Cell names from the --cells flag."""
    cells = table2_lib.all_cells()
    if spec == "all":
        return cells
    if spec in table2_lib.FAMILIES:
        return [c for c in cells if c.startswith(spec + "_")]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        table2_lib.parse_cell_name(name)
    return names


def apply_override(config, override):
    """Sets `field=value` on a ConfigDict, parsing value as the field's type."""
    if "=" not in override:
        raise app.UsageError(
            f"--override must be field=value, e.g. train.epochs=5; got "
            f"{override!r}."
        )
    field, text = override.split("=", 1)
    *path, leaf = field.split(".")
    node = config
    for part in path:
        node = node[part]
    old = node[leaf]
    if isinstance(old, bool):
        value = text.lower() in ("1", "true", "yes")
    elif old is None:
        # A placeholder (e.g. data.overrides.train_size) knows its type.
        field_type = node.get_ref(leaf).get_type()
        if field_type is bool:
            value = text.lower() in ("1", "true", "yes")
        else:
            value = field_type(text) if field_type is not None else text
    else:
        value = type(old)(text)
    node[leaf] = value


def cell_settings(name, config):
    """The settings column of a cell's row in table2.md."""
    default_epochs = cosal.get_config(name).train.epochs
    reduced = (
        f" (REDUCED from the default {default_epochs})"
        if config.train.epochs < default_epochs
        else ""
    )
    warmup = config.model.get("termination_warmup", 0.0)
    selection = config.model.get("termination_warmup_selection", "last")
    gate = (
        f", gate warm-up {warmup:.2g} of training ({selection})"
        if config.model.num_steps > 1 and warmup > 0
        else ""
    )
    decoder = config.model.get("decoder", None)
    head = f", decoder {decoder}" if decoder else ""
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
    overrides = list(_OVERRIDES.value)
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
        config = cosal.get_config(name)
        for override in overrides:
            apply_override(config, override)
        configs[name] = config
        flags_text = " ".join(f"--config.{o}" for o in overrides)
        commands[name] = (
            "python -m experiments.train "
            f"--config=experiments/configs/cosal.py:{name} "
            f"--workdir={workdir} {flags_text}"
        ).strip()
        settings[name] = cell_settings(name, config)
    table2_lib.run_cells(
        configs, _WORKDIR.value, commands, _RESULTS_DIR.value, settings
    )
    print(
        f"Results: {os.path.join(_RESULTS_DIR.value, 'table2.md')} and "
        f"{os.path.join(_RESULTS_DIR.value, 'table2.json')}"
    )


if __name__ == "__main__":
    app.run(main)
