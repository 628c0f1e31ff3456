"""CoSaL losses: weighted pixel cross-entropy and mixture likelihood."""

import keras
from keras import ops

from keras_layers.mixture_termination import mixture_negative_log_likelihood


def _check_foreground_weight(foreground_weight):
    if not foreground_weight > 0:
        raise ValueError(
            "Argument `foreground_weight` must be a positive number, "
            f"received: {foreground_weight}."
        )


def foreground_weights(labels, foreground_weight):
    """Per-pixel weights: `foreground_weight` on shape pixels, 1 elsewhere.

    DEVIATIONS.md point 9: the released CoSaL code weighs pixels that hold a
    shape (label > 0) 10 times more than the white background.
    """
    labels = ops.convert_to_tensor(labels)
    return ops.where(
        labels > 0,
        ops.cast(foreground_weight, "float32"),
        ops.cast(1.0, "float32"),
    )


def weighted_pixel_cross_entropy(labels, logits, foreground_weight=10.0):
    """Per-pixel softmax cross-entropy times the foreground weight.

    Args:
      labels: (B, H, W) integer colour labels (0 background).
      logits: (B, H, W, C) class logits.
      foreground_weight: weight of shape pixels; background pixels weigh 1.

    Returns:
      (B, H, W) float32 per-pixel losses.
    """
    labels = ops.cast(labels, "int32")
    cross_entropy = ops.sparse_categorical_crossentropy(
        labels, ops.cast(logits, "float32"), from_logits=True
    )
    return cross_entropy * foreground_weights(labels, foreground_weight)


def weighted_mixture_negative_log_likelihood(
    labels, step_logits, foreground_weight=10.0, epsilon=1e-6
):
    """The released code's per-pixel mixture loss times the foreground weight.

    Args:
      labels: (B, H, W) integer colour labels.
      step_logits: (B, T, H, W, 1 + C): channel 0 the termination logit of
        each step, channels 1.. its class logits (DEVIATIONS.md point 1).
      foreground_weight: weight of shape pixels; background pixels weigh 1.
      epsilon: clipping of the termination probabilities.

    Returns:
      (B, H, W) float32 per-pixel losses.
    """
    labels = ops.cast(labels, "int32")
    nll = mixture_negative_log_likelihood(
        labels, ops.cast(step_logits, "float32"), epsilon=epsilon
    )
    return nll * foreground_weights(labels, foreground_weight)


@keras.saving.register_keras_serializable(package="lbie")
class WeightedPixelCrossEntropy(keras.losses.Loss):
    """Pixel-wise softmax cross-entropy (paper section 4.1), weighted.

    Shape pixels weigh `foreground_weight` (10 in the released code, DEVIATIONS
    point 9; 1 gives the paper's plain loss). The reduction averages
    over every pixel of the batch.
    """

    def __init__(
        self,
        foreground_weight=10.0,
        name="weighted_pixel_cross_entropy",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        _check_foreground_weight(foreground_weight)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.foreground_weight = foreground_weight

    def call(self, y_true, y_pred):
        return weighted_pixel_cross_entropy(
            y_true, y_pred, self.foreground_weight
        )

    def get_config(self):
        config = super().get_config()
        config.update({"foreground_weight": self.foreground_weight})
        return config


@keras.saving.register_keras_serializable(package="lbie")
class MixtureLikelihoodLoss(keras.losses.Loss):
    """Negative log mixture likelihood of the released code (DEVIATIONS 1).

    Per pixel: -logsumexp_t(log P_t - CE_t), weighted by `foreground_weight`
    on shape pixels; `y_pred` is the (B, T, H, W, 1 + C) step logits.
    """

    def __init__(
        self,
        foreground_weight=10.0,
        epsilon=1e-6,
        name="mixture_likelihood_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        _check_foreground_weight(foreground_weight)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.foreground_weight = foreground_weight
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        return weighted_mixture_negative_log_likelihood(
            y_true, y_pred, self.foreground_weight, self.epsilon
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "foreground_weight": self.foreground_weight,
                "epsilon": self.epsilon,
            }
        )
        return config
