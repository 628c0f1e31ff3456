"""ReferIt's training loss: Hu et al. 2016's per-pixel sigmoid
cross-entropy with the background pixels weighted 1/3."""

import keras
from keras import ops

# Hu et al. 2016 weigh a background pixel's loss 1/3 of an object pixel's.
NEGATIVE_WEIGHT = 1 / 3


def _check_negative_weight(negative_weight):
    if isinstance(negative_weight, bool) or not (
        isinstance(negative_weight, (int, float)) and negative_weight > 0
    ):
        raise ValueError(
            "`negative_weight` must be a positive number; received "
            f"negative_weight={negative_weight!r}."
        )


def weighted_sigmoid_cross_entropy(labels, logits, negative_weight):
    """Per-pixel sigmoid cross-entropy, background pixels (label 0) times
    `negative_weight`: Hu et al.'s weighed_logistic_loss before its mean.

    Args:
      labels: (B, H, W, 1), 1 on the referred object, else 0.
      logits: (B, H, W, 1) float.

    Returns:
      (B, H, W, 1) float32 per-pixel losses.
    """
    labels = ops.cast(labels, "float32")
    logits = ops.cast(logits, "float32")
    # max(x, 0) - x z + log(1 + exp(-|x|)): the stable form of the
    # cross-entropy, as tf.nn.sigmoid_cross_entropy_with_logits computes it.
    loss = (
        ops.maximum(logits, 0.0)
        - logits * labels
        + ops.log1p(ops.exp(-ops.abs(logits)))
    )
    weights = labels * (1.0 - negative_weight) + negative_weight
    return loss * weights


@keras.saving.register_keras_serializable(package="lbie_referit")
class WeightedSigmoidCrossEntropy(keras.losses.Loss):
    """Hu et al. 2016's segmentation loss (spec'd by the paper's section 4.2
    comparison): the mean over every pixel of the batch of the sigmoid
    cross-entropy, background pixels weighted `negative_weight` (1/3)."""

    def __init__(
        self,
        negative_weight=NEGATIVE_WEIGHT,
        name="weighted_sigmoid_cross_entropy",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        _check_negative_weight(negative_weight)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.negative_weight = negative_weight

    def call(self, y_true, y_pred):
        return weighted_sigmoid_cross_entropy(
            y_true, y_pred, self.negative_weight
        )

    def get_config(self):
        config = super().get_config()
        config.update({"negative_weight": self.negative_weight})
        return config
