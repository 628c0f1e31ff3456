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
