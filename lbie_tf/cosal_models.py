"""Builds a CoSaL model from its config: the paper's or the released code's."""

# cosal_losses is imported so that a trained model's compile config (its
# loss) deserializes after `import lbie_tf.cosal_models`.
from lbie_tf import cosal_losses  # noqa: F401
from lbie_tf.cosal_original_model import build_original_model
from lbie_tf.cosal_paper_model import build_paper_model

FAMILIES = {"paper": build_paper_model, "original": build_original_model}


def build_cosal_model(model_config):
    """Returns the keras.Model that `model_config` describes.

    Args:
      model_config: the `model` ConfigDict of experiments/configs/cosal.py
        (family "paper" or "original", num_steps, attention, num_classes,
        image_size, vocabulary_size and the family's sizes).

    Raises:
      ValueError: for an unknown family, num_steps < 1, a T > 1 model
        without attention, or an image size that is not 48.
    """
    family = model_config.family
    if family not in FAMILIES:
        raise ValueError(
            f"Argument `family` must be one of {sorted(FAMILIES)}, "
            f"received: {family!r}."
        )
    if model_config.num_steps < 1:
        raise ValueError(
            "Argument `num_steps` must be >= 1, received: "
            f"{model_config.num_steps}."
        )
    if model_config.image_size != 48:
        raise ValueError(
            "Argument `image_size` must be 48 (the CoSaL models' encoders "
            f"reduce 48 px to the 3 x 3 grid), received: "
            f"{model_config.image_size}."
        )
    if model_config.num_classes < 2:
        raise ValueError(
            "Argument `num_classes` must be >= 2 (background + colours), "
            f"received: {model_config.num_classes}."
        )
    return FAMILIES[family](model_config)


def target_output(model_config):
    """The model output the training loss reads: mixture or pixel logits."""
    if model_config.family == "original" and model_config.num_steps > 1:
        return "step_logits"
    return "logits"
