"""Builds a CoSaL model from its config: the paper's or the released code's."""

import numpy as np
from keras import ops

from lbie_tf.core import errors

# losses is imported so that a trained model's compile config (its loss)
# deserializes after `import lbie_tf.cosal.models`.
from lbie_tf.cosal import losses  # noqa: F401
from lbie_tf.cosal.paper_model import build_paper_model, warmup_steps
from lbie_tf.cosal.released_model import build_original_model

FAMILIES = ("paper", "original")
ORIGINAL_DECODERS = ("deconv", "classifier_upsampling")


def check_model_config(model_config):
    """Raises `errors.UsageError` (a ValueError) for a model config that
    no builder accepts: an unknown family, num_steps < 1, an image size other
    than 48, fewer than 2 classes, a gate warm-up outside [0, 1) or an
    unknown original-family decoder."""
    family = model_config.family
    if family not in FAMILIES:
        raise errors.UsageError(
            f"`model.family` must be one of {sorted(FAMILIES)}, "
            f"received: {family!r}."
        )
    if model_config.num_steps < 1:
        raise errors.UsageError(
            "`model.num_steps` must be >= 1, received: "
            f"{model_config.num_steps}."
        )
    if model_config.image_size != 48:
        raise errors.UsageError(
            "`model.image_size` must be 48 (the CoSaL models' encoders "
            f"reduce 48 px to the 3 x 3 grid), received: "
            f"{model_config.image_size}."
        )
    if model_config.num_classes < 2:
        raise errors.UsageError(
            "`model.num_classes` must be >= 2 (background + colours), "
            f"received: {model_config.num_classes}."
        )
    if family == "paper":
        warmup_steps(model_config, None)
    if family == "original" and model_config.decoder not in ORIGINAL_DECODERS:
        raise errors.UsageError(
            f"`model.decoder` must be one of {list(ORIGINAL_DECODERS)}, "
            f"received: {model_config.decoder!r}."
        )


def build_cosal_model(model_config, training_steps=None):
    """Returns the keras.Model that `model_config` describes.

    Args:
      model_config: the `model` ConfigDict of experiments/configs/cosal.py
        (family "paper" or "original", num_steps, attention, num_classes,
        image_size, vocabulary_size and the family's sizes).
      training_steps: the number of training batches the model will see;
        the paper model's gate warm-up is `termination_warmup` of them
        (None: no warm-up, e.g. a model built only to run).

    Raises:
      ValueError: for a config `check_model_config` rejects, or a T > 1
        model without attention.
    """
    check_model_config(model_config)
    if model_config.family == "paper":
        return build_paper_model(model_config, training_steps)
    return build_original_model(model_config)


def target_output(model_config):
    """The model output the training loss reads: mixture or pixel logits."""
    if model_config.family == "original" and model_config.num_steps > 1:
        return "step_logits"
    return "logits"


def kept_steps(outputs):
    """The 0-based step whose output each region or pixel kept.

    Both families emit the decision as their "stop_step" output, made in
    the graph by the layer that uses it (the paper's termination gate, the
    released code's mixture), so nothing here re-derives it.

    Args:
      outputs: a CoSaL model's output dict for a batch.

    Returns:
      int64 array (B, 6, 6) for the paper model (per region of the fused
      map), (B, 48, 48) for the original model (per pixel), or None for
      one-step models, which have no "stop_step".
    """
    if "stop_step" not in outputs:
        return None
    return ops.convert_to_numpy(outputs["stop_step"]).astype(np.int64)
