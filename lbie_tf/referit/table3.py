"""The paper's Table 3 (ReferIt test split), as fractions."""

from lbie_tf.referit import metrics

# Chen et al. 2018, Table 3: precision@0.5 .. 0.9 and overall IoU, in
# percent in the paper and as fractions here.
TABLE3 = {
    "hu": {
        "name": "Hu et al. 2016",
        "precision": (0.3402, 0.2671, 0.1932, 0.1163, 0.0392),
        "overall_iou": 0.4803,
    },
    "lbie": {
        "name": "LBIE (Chen et al. 2018)",
        "precision": (0.3253, 0.279, 0.1876, 0.1237, 0.0437),
        "overall_iou": 0.5009,
    },
}
# The text-blind control has no row in the paper.
PAPER_ROW_OF_MODEL = {"hu": "hu", "lbie": "lbie", "text_blind": None}


def paper_row(model_name):
    """{overall_iou, precision@k...} of the paper's row for a model, or
    None (the text-blind control)."""
    key = PAPER_ROW_OF_MODEL[model_name]
    if key is None:
        return None
    row = TABLE3[key]
    result = {"overall_iou": row["overall_iou"]}
    for threshold, value in zip(
        metrics.PRECISION_THRESHOLDS, row["precision"], strict=True
    ):
        result[metrics.precision_key(threshold)] = value
    return result


def comparison_markdown(model_name, results):
    """A Markdown table: ours beside each paper row of Table 3."""
    keys = ["overall_iou"] + [
        metrics.precision_key(t) for t in metrics.PRECISION_THRESHOLDS
    ]
    lines = [
        "| row | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 1) + "|",
        f"| ours ({model_name}) | "
        + " | ".join(f"{results[k]:.4f}" for k in keys)
        + " |",
    ]
    for key in TABLE3:
        row = paper_row(key)
        lines.append(
            f"| paper: {TABLE3[key]['name']} | "
            + " | ".join(f"{row[k]:.4f}" for k in keys)
            + " |"
        )
    return "\n".join(lines)


SYNTHETIC_KEYS = (
    ("overall_iou",)
    + tuple(metrics.precision_key(t) for t in metrics.PRECISION_THRESHOLDS)
    + ("mean_iou",)
)


def synthetic_markdown(rows):
    """results/referit_synthetic.md: one row per model, with its command."""
    lines = [
        "# ReferIt, offline: a synthetic referring-expression set",
        "",
        "Each image holds 2 to 4 coloured shapes; each expression names "
        "colour, shape and/or",
        "position so that only the text tells which object is meant "
        "(data_builders/referit/",
        "synthetic.py, written in ReferIt's on-disk layout). Every model "
        "has a small VGG-16",
        "trained from scratch on CPU; the text-blind model is the LBIE "
        "network with the",
        "expression replaced by a learned constant. Hu-exact metrics at "
        "the original",
        "resolution over every test pair. Written by "
        "`python -m experiments.referit_synthetic`.",
        "",
        "| model | pairs | " + " | ".join(SYNTHETIC_KEYS) + " | epochs "
        "| wall s of this command (a finished run is only evaluated) "
        "| command |",
        "|---" * (len(SYNTHETIC_KEYS) + 5) + "|",
    ]
    for row in rows:
        values = " | ".join(f"{row[k]:.4f}" for k in SYNTHETIC_KEYS)
        lines.append(
            f"| {row['model']} | {row['num_pairs']} | {values} | "
            f"{row['epochs']} | {row['wall_s']:.0f} | `{row['command']}` |"
        )
    return "\n".join(lines) + "\n"
