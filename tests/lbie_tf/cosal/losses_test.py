"""Tests of the CoSaL losses against NumPy references from the spec."""

import keras
import numpy as np
import pytest

from lbie_tf.cosal import losses


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _numpy_weighted_cross_entropy(labels, logits, weight):
    log_probs = _log_softmax(logits.astype(np.float64))
    picked = np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    return -picked * np.where(labels > 0, weight, 1.0)


def _numpy_mixture_loss(labels, step_logits, weight, epsilon=1e-6):
    """Spec section 2 item 1, pixel by pixel."""
    batch, steps, height, width, _ = step_logits.shape
    out = np.zeros((batch, height, width))
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                terms = []
                log_not_stopped = 0.0
                for t in range(steps):
                    logit = step_logits[b, t, y, x].astype(np.float64)
                    g = np.clip(
                        1 / (1 + np.exp(-logit[0])), epsilon, 1 - epsilon
                    )
                    log_p = log_not_stopped + np.log(g)
                    log_not_stopped += np.log(1 - g)
                    ce = -_log_softmax(logit[1:])[labels[b, y, x]]
                    terms.append(log_p - ce)
                terms = np.array(terms)
                peak = terms.max()
                nll = -(peak + np.log(np.exp(terms - peak).sum()))
                out[b, y, x] = nll * (weight if labels[b, y, x] > 0 else 1.0)
    return out


def test_weighted_cross_entropy_matches_numpy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, (2, 4, 5))
    logits = rng.normal(size=(2, 4, 5, 7)).astype("float32") * 3
    per_pixel = losses.weighted_pixel_cross_entropy(labels, logits, 10.0)
    expected = _numpy_weighted_cross_entropy(labels, logits, 10.0)
    np.testing.assert_allclose(per_pixel, expected, rtol=1e-5, atol=1e-6)
    loss = losses.WeightedPixelCrossEntropy(foreground_weight=10.0)
    # Keras passes labels as float; the mean runs over every pixel.
    value = loss(labels.astype("float32"), logits)
    np.testing.assert_allclose(float(value), expected.mean(), rtol=1e-5)


def test_mixture_loss_matches_pixel_loops():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (2, 3, 2))
    step_logits = rng.normal(size=(2, 3, 3, 2, 5)).astype("float32") * 2
    step_logits[0, :, 0, 0, 0] = [30.0, -30.0, 30.0]  # gates saturated
    expected = _numpy_mixture_loss(labels, step_logits, 10.0)
    per_pixel = losses.weighted_mixture_negative_log_likelihood(
        labels, step_logits, 10.0
    )
    np.testing.assert_allclose(per_pixel, expected, rtol=1e-4, atol=1e-5)
    loss = losses.MixtureLikelihoodLoss(foreground_weight=10.0)
    value = loss(labels.astype("float32"), step_logits)
    np.testing.assert_allclose(float(value), expected.mean(), rtol=1e-4)


def test_losses_serialize_and_reject_bad_weights():
    for loss in (
        losses.WeightedPixelCrossEntropy(foreground_weight=3.0),
        losses.MixtureLikelihoodLoss(foreground_weight=2.0),
    ):
        clone = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(clone) is type(loss)
        assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="foreground_weight"):
        losses.WeightedPixelCrossEntropy(foreground_weight=0.0)
    with pytest.raises(ValueError, match="foreground_weight"):
        losses.MixtureLikelihoodLoss(foreground_weight=-1.0)
