"""Tests of ReferIt's loss against a NumPy reference of Hu et al.'s
weighed_logistic_loss."""

import keras
import numpy as np
import pytest

from lbie_tf.referit import losses


def _reference(labels, logits, negative_weight):
    """mean(w * (-z log s(x) - (1 - z) log(1 - s(x)))), w = 1 on the object
    and negative_weight elsewhere."""
    sigmoid = 1 / (1 + np.exp(-logits.astype(np.float64)))
    per_pixel = -(labels * np.log(sigmoid) + (1 - labels) * np.log(1 - sigmoid))
    weights = np.where(labels > 0, 1.0, negative_weight)
    return float(np.mean(per_pixel * weights))


def test_loss_matches_the_numpy_reference():
    rng = np.random.default_rng(0)
    labels = (rng.random((2, 5, 7, 1)) > 0.6).astype(np.float32)
    logits = rng.normal(size=(2, 5, 7, 1)).astype(np.float32) * 3
    loss = losses.WeightedSigmoidCrossEntropy(1 / 3)(labels, logits)
    np.testing.assert_allclose(
        float(loss), _reference(labels, logits, 1 / 3), rtol=1e-5
    )


def test_large_logits_stay_finite():
    labels = np.array([[[[0.0], [1.0]]]], np.float32)
    logits = np.array([[[[80.0], [-80.0]]]], np.float32)
    loss = float(losses.WeightedSigmoidCrossEntropy(0.5)(labels, logits))
    np.testing.assert_allclose(loss, (0.5 * 80 + 80) / 2, rtol=1e-5)


def test_config_round_trip():
    loss = losses.WeightedSigmoidCrossEntropy(0.25)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert restored.negative_weight == 0.25


@pytest.mark.parametrize("weight", [0, -1.0, True, "x"])
def test_bad_negative_weight_is_refused(weight):
    with pytest.raises(ValueError, match="negative_weight"):
        losses.WeightedSigmoidCrossEntropy(weight)
