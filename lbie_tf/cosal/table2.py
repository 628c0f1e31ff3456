"""Paper Table 2 (CoSaL average IoU): its numbers, cells and grid runner."""

import json
import os
import time

from lbie_tf.core import artifacts

# Paper Table 2: average IoU by (T, attention, number of direct sentences).
PAPER_TABLE2 = {
    (1, False, 4): 0.2107,
    (1, False, 6): 0.2499,
    (1, False, 8): 0.3186,
    (1, True, 4): 0.4030,
    (1, True, 6): 0.5220,
    (1, True, 8): 0.7097,
    (4, True, 4): 0.5033,
    (4, True, 6): 0.5313,
    (4, True, 8): 0.7017,
}
FAMILIES = ("paper", "original")
VARIANTS = ((1, False), (1, True), (4, True))
NUM_DIRECT = (4, 6, 8)


def paper_iou(num_steps, attention, num_direct):
    """The paper's Table 2 number for a cell, or None if it has none."""
    return PAPER_TABLE2.get((int(num_steps), bool(attention), int(num_direct)))


def cell_name(family, num_steps, attention, num_direct):
    """The config argument of a cell, e.g. "paper_t4_attn_d8"."""
    attention_part = "attn" if attention else "noattn"
    return f"{family}_t{num_steps}_{attention_part}_d{num_direct}"


def parse_cell_name(name):
    """Inverse of `cell_name`: returns (family, num_steps, attention, direct).

    Raises:
      ValueError: if `name` is not of the form
        `<paper|original>_t<T>_<attn|noattn>_d<num_direct>`.
    """
    parts = name.split("_")
    allowed = (
        "<paper|original>_t<T>_<attn|noattn>_d<num_direct>, "
        "e.g. paper_t4_attn_d8"
    )
    if (
        len(parts) != 4
        or parts[0] not in FAMILIES
        or not parts[1].startswith("t")
        or not parts[1][1:].isdigit()
        or parts[2] not in ("attn", "noattn")
        or not parts[3].startswith("d")
        or not parts[3][1:].isdigit()
    ):
        raise ValueError(
            f"Config argument {name!r} is not a Table 2 cell name; "
            f"expected {allowed}."
        )
    num_steps, num_direct = int(parts[1][1:]), int(parts[3][1:])
    if num_steps < 1 or not 1 <= num_direct <= 9:
        raise ValueError(
            f"Config argument {name!r}: T must be >= 1 and num_direct in 1..9."
        )
    if num_steps > 1 and parts[2] == "noattn":
        raise ValueError(
            f"Config argument {name!r}: a model without attention has T = 1."
        )
    return parts[0], num_steps, parts[2] == "attn", num_direct


def all_cells():
    """The 18 cell names: family x (T1 no attention, T1, T4) x 4/6/8."""
    return [
        cell_name(family, num_steps, attention, num_direct)
        for family in FAMILIES
        for num_steps, attention in VARIANTS
        for num_direct in NUM_DIRECT
    ]


ROW_KEYS = (
    "family",
    "T",
    "attention",
    "num_direct",
    "paper_iou",
    "iou_shapes",
    "miou_colors",
    "text_sensitivity",
    "train_images",
    "epochs",
    "wall_s",
    "command",
)


def make_row(results, command):
    """A results/table2.json row from a run's eval.json content."""
    row = {key: results.get(key) for key in ROW_KEYS if key != "command"}
    row["command"] = command
    return row


def _row_key(row):
    return (row["family"], row["T"], row["attention"], row["num_direct"])


def _sort_key(row):
    family = FAMILIES.index(row["family"]) if row["family"] in FAMILIES else 9
    return (family, row["T"], row["attention"], row["num_direct"])


def merge_rows(old_rows, new_rows):
    """Rows of both, a new row replacing an old one of the same cell."""
    merged = {_row_key(row): row for row in old_rows}
    merged.update({_row_key(row): row for row in new_rows})
    return sorted(merged.values(), key=_sort_key)


def _fmt(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(rows, settings=None):
    """results/table2.md: paper number, ours, settings, wall time, command.

    Args:
      rows: table2.json rows.
      settings: optional {cell name: settings text} (data, batch size and
        any training length reduction), shown in the settings column.
    """
    settings = settings or {}
    lines = [
        "# Paper Table 2 on CoSaL: paper vs this port",
        "",
        "Average IoU over 9 shapes + background (the paper's metric, our",
        "reading in README) on the whole test split, beside the paper's",
        "number; mean IoU over the 7 colour classes (the released code's",
        "metric) for reference; text sensitivity: the share of shape",
        "pixels whose predicted colour changes when each test image gets",
        "another image's sentences (0: the model ignores the text; about",
        "0.83 when it follows it, 6 colours). Written by",
        "`python -m experiments.table2`.",
        "",
        "| family | T | attention | direct | paper IoU | our IoU (shapes) "
        "| our mIoU (colours) | text sensitivity | train images | epochs "
        "| settings | wall s | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = cell_name(
            row["family"], row["T"], row["attention"], row["num_direct"]
        )
        lines.append(
            f"| {row['family']} | {row['T']} | "
            f"{'yes' if row['attention'] else 'no'} | {row['num_direct']} | "
            f"{_fmt(row['paper_iou'])} | {_fmt(row['iou_shapes'])} | "
            f"{_fmt(row['miou_colors'])} | "
            f"{_fmt(row.get('text_sensitivity'), 3)} | "
            f"{row['train_images']} | "
            f"{row['epochs']} | {settings.get(name, '')} | "
            f"{_fmt(row['wall_s'], 0)} | `{row['command']}` |"
        )
    return "\n".join(lines) + "\n"


def read_rows(path):
    """Rows of an existing results/table2.json, or [] if there is none."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def write_results(rows, results_dir, settings=None):
    """Merges `rows` into results_dir/table2.json and rewrites table2.md."""
    os.makedirs(results_dir, exist_ok=True)
    json_path = os.path.join(results_dir, "table2.json")
    rows = merge_rows(read_rows(json_path), rows)
    old_settings = {}
    settings_path = os.path.join(results_dir, ".table2_settings.json")
    if os.path.exists(settings_path):
        with open(settings_path) as f:
            old_settings = json.load(f)
    settings = {**old_settings, **(settings or {})}
    for path, text in (
        (json_path, json.dumps(rows, indent=2) + "\n"),
        (settings_path, json.dumps(settings, indent=2) + "\n"),
        (
            os.path.join(results_dir, "table2.md"),
            markdown_table(rows, settings),
        ),
    ):
        artifacts.write_text(path, text)
    return rows


def run_cells(configs, workdir, commands, results_dir, settings=None):
    """Trains and evaluates each config; writes the results after each cell.

    Args:
      configs: {cell name: ConfigDict}.
      workdir: runs go to workdir/<cell name>.
      commands: {cell name: the command line that reproduces the cell}.
      results_dir: where table2.json and table2.md are (re)written.
      settings: optional {cell name: settings text} for table2.md.

    Returns:
      The rows of the cells run here.
    """
    from lbie_tf.core import train_lib

    rows = []
    for name, config in configs.items():
        start = time.perf_counter()
        print(f"=== Table 2 cell {name} ===", flush=True)
        results = train_lib.train_and_evaluate(
            config, os.path.join(workdir, name)
        )
        results.setdefault("wall_s", time.perf_counter() - start)
        rows.append(make_row(results, commands[name]))
        # Only this cell's settings: a cell not yet run keeps its old row
        # and the settings that row was made with.
        cell_settings = (
            {name: settings[name]} if name in (settings or {}) else {}
        )
        write_results(rows[-1:], results_dir, cell_settings)
    return rows
