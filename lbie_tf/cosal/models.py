"""Builds a CoSaL model from its config: the paper's or the released code's."""

import numpy as np
from keras import ops

from keras_layers.gumbel_termination_gate import GumbelTerminationGate

# losses is imported so that a trained model's compile config (its
# loss) deserializes after `import lbie_tf.cosal_models`.
from lbie_tf.core import errors  # noqa: F401
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


def first_firing_steps(stop_probabilities, threshold=0.5):
    """The step whose output each region keeps at inference (0-based).

    The Gumbel termination gate stops a region at the first step whose gate
    g_t reaches `threshold` (step T if none does). Its stop distribution
    beta_t = g_t * prod_{k<t} (1 - g_k) gives back the gates as
    g_t = beta_t / (1 - sum_{k<t} beta_k).

    Args:
      stop_probabilities: array (..., T) of beta, summing to 1 over T.
      threshold: the gate's inference threshold.

    Returns:
      int array (...) of 0-based steps.
    """
    beta = np.asarray(stop_probabilities, dtype=np.float64)
    if beta.ndim < 1 or beta.shape[-1] < 1:
        raise ValueError(
            "stop_probabilities must have shape (..., steps); received "
            f"shape {beta.shape}."
        )
    survival = 1.0 - np.cumsum(beta, axis=-1) + beta
    gates = beta / np.maximum(survival, 1e-12)
    fired = gates >= threshold
    fired[..., -1] = True
    return fired.argmax(axis=-1)


def _gumbel_gate(model):
    """The model's Gumbel termination gate, or None."""
    for layer in model.layers:
        gate = getattr(layer, "termination_gate", None)
        if isinstance(gate, GumbelTerminationGate):
            return gate
    return None


def gate_threshold(model, default=0.5):
    """The inference threshold of the model's Gumbel termination gate."""
    gate = _gumbel_gate(model)
    return default if gate is None else gate.threshold


def kept_steps(model, outputs):
    """The 0-based step whose output each region or pixel kept.

    Args:
      model: the CoSaL keras.Model that gave `outputs`.
      outputs: its output dict for a batch.

    Returns:
      int64 array (B, 6, 6) for the paper model (the Gumbel gate's first
      firing step per region), (B, 48, 48) for the original model (the
      mixture's step per pixel), or None for one-step models.
    """
    if "stop_step" in outputs:
        return ops.convert_to_numpy(outputs["stop_step"]).astype(np.int64)
    if "stop_probabilities" in outputs:
        beta = ops.convert_to_numpy(outputs["stop_probabilities"])
        gate = _gumbel_gate(model)
        if gate is not None and bool(gate.in_warmup()):
            # Still warming up: the gate keeps step T everywhere.
            return np.full(beta.shape[:-1], beta.shape[-1] - 1, np.int64)
        return first_firing_steps(beta, gate_threshold(model)).astype(np.int64)
    return None
