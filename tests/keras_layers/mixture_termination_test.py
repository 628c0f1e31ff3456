"""Tests of the released code's mixture termination against a brute force."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_layers.mixture_termination import (
    MixtureTermination,
    mixture_log_stop_probabilities,
    mixture_negative_log_likelihood,
    mixture_predict,
)
from tests.layer_checklist import run_layer_checklist

EPSILON = 1e-6


def _pixel_reference(pixel_steps, label, epsilon=EPSILON):
    """Brute force for one pixel from spec section 2.1, in plain Python.

    Args:
      pixel_steps: (T, 1 + C) array; column 0 the gate logit.
      label: the pixel's class id.

    Returns:
      (log_stop list, class log-likelihood list of length C, nll, t*, class).
    """
    steps, channels = pixel_steps.shape
    gates = []
    for t in range(steps):
        # Clamping the logit first only avoids a Python overflow; the clip
        # below decides the value long before |logit| = 700.
        logit = min(max(float(pixel_steps[t, 0]), -700.0), 700.0)
        g = 1.0 / (1.0 + math.exp(-logit))
        gates.append(min(max(g, epsilon), 1.0 - epsilon))
    log_stop = []
    for t in range(steps):
        value = math.log(gates[t])
        for s in range(t):
            value += math.log(1.0 - gates[s])
        log_stop.append(value)
    log_softmax = []
    for t in range(steps):
        logits = [float(v) for v in pixel_steps[t, 1:]]
        top = max(logits)
        # Shift before subtracting the normaliser: top + log(sum) would lose
        # the log-sum entirely when top is -1e30.
        log_norm = math.log(sum(math.exp(v - top) for v in logits))
        log_softmax.append([(v - top) - log_norm for v in logits])
    class_log_likelihood = []
    for c in range(channels - 1):
        terms = [log_stop[t] + log_softmax[t][c] for t in range(steps)]
        top = max(terms)
        class_log_likelihood.append(
            top + math.log(sum(math.exp(v - top) for v in terms))
        )
    # The spec's form: -logsumexp_t(log P_t - CE_t).
    terms = [log_stop[t] + log_softmax[t][label] for t in range(steps)]
    top = max(terms)
    nll = -(top + math.log(sum(math.exp(v - top) for v in terms)))
    stop = max(range(steps), key=lambda t: (log_stop[t], -t))
    logits = list(pixel_steps[stop, 1:])
    predicted = max(range(channels - 1), key=lambda c: (logits[c], -c))
    return log_stop, class_log_likelihood, nll, stop, predicted


def _reference(step_logits, labels):
    batch, _, height, width, _ = step_logits.shape
    out = {"log_stop": [], "class_ll": [], "nll": [], "stop": [], "cls": []}
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                values = _pixel_reference(
                    step_logits[b, :, i, j, :], int(labels[b, i, j])
                )
                for key, value in zip(out, values, strict=True):
                    out[key].append(value)
    shapes = {
        "log_stop": (batch, height, width, -1),
        "class_ll": (batch, height, width, -1),
        "nll": (batch, height, width),
        "stop": (batch, height, width),
        "cls": (batch, height, width),
    }
    return {k: np.reshape(np.array(v), shapes[k]) for k, v in out.items()}


def _inputs(steps=3, classes=4, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    step_logits = scale * rng.standard_normal((2, steps, 3, 2, 1 + classes))
    labels = rng.integers(0, classes, size=(2, 3, 2))
    return step_logits.astype("float32"), labels.astype("int32")


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_functions_equal_brute_force(steps):
    step_logits, labels = _inputs(steps=steps, seed=steps)
    expected = _reference(step_logits.astype("float64"), labels)
    log_stop = mixture_log_stop_probabilities(
        np.moveaxis(step_logits[..., 0], 1, -1)
    )
    np.testing.assert_allclose(log_stop, expected["log_stop"], rtol=1e-5)
    nll = mixture_negative_log_likelihood(labels, step_logits)
    np.testing.assert_allclose(nll, expected["nll"], rtol=1e-5, atol=1e-6)
    classes, stop = mixture_predict(step_logits)
    np.testing.assert_array_equal(stop, expected["stop"])
    np.testing.assert_array_equal(classes, expected["cls"])
    assert keras.backend.standardize_dtype(classes.dtype) == "int32"
    assert keras.backend.standardize_dtype(stop.dtype) == "int32"


def test_layer_equals_brute_force():
    step_logits, labels = _inputs(steps=3, seed=7)
    expected = _reference(step_logits.astype("float64"), labels)
    outputs = MixtureTermination()(step_logits)
    np.testing.assert_allclose(
        outputs["log_stop_probabilities"], expected["log_stop"], rtol=1e-5
    )
    np.testing.assert_allclose(
        outputs["class_log_probabilities"],
        expected["class_ll"],
        rtol=1e-5,
        atol=1e-6,
    )
    # The loss is minus the label's entry of the class log-likelihoods.
    gathered = np.take_along_axis(
        np.asarray(outputs["class_log_probabilities"]),
        labels[..., None],
        axis=-1,
    )[..., 0]
    np.testing.assert_allclose(-gathered, expected["nll"], rtol=1e-5)
    np.testing.assert_array_equal(outputs["stop_step"], expected["stop"])
    np.testing.assert_array_equal(
        np.argmax(outputs["logits"], axis=-1), expected["cls"]
    )
    chosen = np.take_along_axis(
        np.moveaxis(step_logits[..., 1:], 1, -2),
        expected["stop"][..., None, None],
        axis=-2,
    )[..., 0, :]
    np.testing.assert_allclose(outputs["logits"], chosen)


def test_single_step_is_plain_cross_entropy_plus_gate():
    step_logits, labels = _inputs(steps=1, seed=3)
    nll = np.asarray(mixture_negative_log_likelihood(labels, step_logits))
    logits = step_logits[:, 0, ..., 1:].astype("float64")
    log_softmax = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    cross_entropy = -np.take_along_axis(log_softmax, labels[..., None], -1)
    gate = np.clip(1 / (1 + np.exp(-step_logits[:, 0, ..., 0])), 1e-6, 1)
    np.testing.assert_allclose(
        nll, cross_entropy[..., 0] - np.log(gate), rtol=1e-5
    )
    _, stop = mixture_predict(step_logits)
    np.testing.assert_array_equal(stop, 0)


def test_pixel_that_never_stops_keeps_unnormalised_mass():
    # With every gate at 0 the clipped gates are epsilon: there is no forced
    # stop at T, so the stop probabilities sum to about T * epsilon.
    gate_logits = np.full((1, 3), -80.0, "float32")
    log_stop = np.asarray(mixture_log_stop_probabilities(gate_logits))
    expected = np.log(1e-6) + np.arange(3) * np.log1p(-1e-6)
    np.testing.assert_allclose(log_stop[0], expected, rtol=1e-5)
    assert np.logaddexp.reduce(log_stop[0]) < np.log(3.01e-6)


@pytest.mark.parametrize("gate", [-1e4, 1e4, -80.0, 80.0])
def test_finite_at_extremes(gate):
    step_logits, labels = _inputs(steps=3, seed=1)
    step_logits[..., 0] = gate
    step_logits[0, :, 0, 0, 1:] = -1e30
    step_logits[1, :, 1, 1, 1:] = np.array([-1e30, 0.0, -1e30, 1e4])
    step_logits = tf.constant(step_logits)
    with tf.GradientTape() as tape:
        tape.watch(step_logits)
        nll = mixture_negative_log_likelihood(labels, step_logits)
        total = tf.reduce_sum(nll)
    gradient = tape.gradient(total, step_logits)
    assert np.all(np.isfinite(nll))
    assert np.all(np.isfinite(gradient))
    outputs = MixtureTermination()(step_logits)
    for value in outputs.values():
        assert np.all(np.isfinite(value))
    expected = _reference(np.asarray(step_logits, "float64"), labels)
    np.testing.assert_allclose(nll, expected["nll"], rtol=1e-4)


def test_gradients_reach_a_producing_layer():
    step_logits, labels = _inputs(steps=2, seed=5)
    dense = keras.layers.Dense(5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            mixture_negative_log_likelihood(labels, dense(step_logits))
        )
    gradients = tape.gradient(loss, dense.trainable_weights)
    assert all(np.any(np.asarray(g) != 0) for g in gradients)


def test_half_precision_is_promoted():
    step_logits, _ = _inputs(steps=2, seed=2)
    step_logits[..., 0] = 50.0
    log_stop = mixture_log_stop_probabilities(
        tf.constant(step_logits[..., 0], tf.float16)
    )
    assert keras.backend.standardize_dtype(log_stop.dtype) == "float32"
    assert np.all(np.isfinite(log_stop))


def test_checklist():
    step_logits, _ = _inputs(steps=3, classes=4, seed=4)
    run_layer_checklist(
        lambda: MixtureTermination(epsilon=1e-5),
        step_logits,
        # Sorted keys: class_log_probabilities, log_stop_probabilities,
        # logits, stop_step.
        [(2, 3, 2, 4), (2, 3, 2, 3), (2, 3, 2, 4), (2, 3, 2)],
    )


@pytest.mark.parametrize("epsilon", [0.0, -1e-6, 0.5, "small"])
def test_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        MixtureTermination(epsilon=epsilon)
    with pytest.raises(ValueError, match="epsilon"):
        mixture_log_stop_probabilities(np.zeros((1, 2), "float32"), epsilon)


def test_build_accepts_a_list():
    layer = MixtureTermination()
    layer.build([None, 2, 3, 3, 5])
    assert layer.built


def test_bad_shapes():
    with pytest.raises(ValueError, match="step_logits"):
        MixtureTermination()(np.zeros((2, 3, 1), "float32"))
    with pytest.raises(ValueError, match="step_logits"):
        mixture_predict(np.zeros((2, 3), "float32"))


def _moveaxis_reference(labels, step_logits, epsilon=EPSILON):
    """The loss as first written: the whole tensor's step axis moved next
    to the channels, then sliced (kept to show the rewrite is exact)."""
    from keras import ops

    step_last = ops.moveaxis(ops.cast(step_logits, "float32"), 1, -2)
    log_stop = mixture_log_stop_probabilities(step_last[..., 0], epsilon)
    class_logits = step_last[..., 1:]
    log_probs = ops.log_softmax(class_logits, axis=-1)
    one_hot = ops.one_hot(
        ops.cast(labels, "int32"), class_logits.shape[-1], dtype="float32"
    )
    label_log_probs = ops.sum(log_probs * one_hot[..., None, :], axis=-1)
    return -ops.logsumexp(log_stop + label_log_probs, axis=-1)


@pytest.mark.parametrize("shape", [(4, 3, 5, 6, 8), (2, 1, 7, 4), (3, 4, 2)])
def test_loss_matches_the_moveaxis_formula_and_its_gradient(shape):
    """mixture_negative_log_likelihood computes the first formula's sums:
    per-pixel values and the gradient agree to 1e-6 on random inputs."""
    rng = np.random.default_rng(len(shape))
    step_logits = tf.constant(3 * rng.normal(size=shape), tf.float32)
    labels = tf.constant(
        rng.integers(0, shape[-1] - 1, size=(shape[0],) + shape[2:-1])
    )
    upstream = tf.constant(
        rng.uniform(size=(shape[0],) + shape[2:-1]), tf.float32
    )

    def value_and_gradient(function):
        with tf.GradientTape() as tape:
            tape.watch(step_logits)
            per_pixel = function(labels, step_logits)
            loss = tf.reduce_sum(per_pixel * upstream)
        return np.asarray(per_pixel), np.asarray(
            tape.gradient(loss, step_logits)
        )

    old = value_and_gradient(_moveaxis_reference)
    new = value_and_gradient(mixture_negative_log_likelihood)
    np.testing.assert_allclose(new[0], old[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(new[1], old[1], rtol=1e-6, atol=1e-6)
