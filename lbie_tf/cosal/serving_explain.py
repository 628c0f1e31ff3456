"""Figure 5 for one `serving_bytes` answer, drawn from the signature's
outputs alone (the web page of `experiments.serve` shows it)."""

import io

import numpy as np
from PIL import Image

from lbie_tf.cosal import editing, explain_figure


def explain(text, outputs, scale=8):
    """Per step and cell, the sentence with the largest attention weight
    (paper section 4.1, Figure 5), over the coloured answer.

    The signature returns no kept step, so unlike `experiments.edit
    --explain` the picture marks no step as the one the termination gate
    kept.

    Args:
      text: the request's nine sentences in one string.
      outputs: one instance's `serving_bytes` outputs: `png_bytes` and, for
        models with attention, `attention_weights` (regions, 9, T).

    Returns:
      uint8 array (H, W, 3), or None for a model without attention.
    """
    if "attention_weights" not in outputs:
        return None
    _, sentences = editing.parse_description(text)
    with Image.open(io.BytesIO(bytes(outputs["png_bytes"]))) as picture:
        colored = np.asarray(picture.convert("RGB"))
    return explain_figure.render_explanation(
        colored,
        np.asarray(outputs["attention_weights"]),
        sentences,
        scale=scale,
    )
