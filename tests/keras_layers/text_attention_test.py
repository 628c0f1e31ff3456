"""Tests of TextAttention against NumPy references of its three forms."""

import numpy as np
import pytest
import tensorflow as tf

from keras_layers.text_attention import TextAttention
from tests.layer_checklist import run_layer_checklist

BATCH, HEIGHT, WIDTH, QUERY_DIM = 3, 2, 3, 4
WORDS, MEMORY_DIM, UNITS = 5, 3, 6
# Batch 0: all words real; batch 1: two padded words; batch 2: all padded.
MASK = np.array([[1, 1, 1, 1, 1], [1, 0, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
FORMS = [("bilinear", None), ("scaled_dot", None), ("additive", UNITS)]


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(BATCH, HEIGHT, WIDTH, QUERY_DIM))
    memory = rng.normal(size=(BATCH, WORDS, MEMORY_DIM))
    return query.astype("float32"), memory.astype("float32")


def reference_softmax(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    largest = np.max(scores, axis=-1, keepdims=True)
    largest = np.where(np.isfinite(largest), largest, 0.0)
    exponentials = np.exp(scores - largest)
    total = exponentials.sum(-1, keepdims=True)
    return np.divide(
        exponentials, total, out=np.zeros_like(exponentials), where=total > 0
    )


def reference_attention(form, query, memory, mask, w):
    """Paper section 3 (bilinear) and spec section 2 item 4 (the others)."""
    query, memory = np.float64(query), np.float64(memory)
    mask = mask[:, None, None, :]
    if form == "bilinear":
        scores = np.einsum("bhwd,dk,blk->bhwl", query, w["W"], memory)
        weights = reference_softmax(scores, mask)
    elif form == "scaled_dot":
        fc = memory @ w["W_m"] + w["b_m"]
        weights = np.einsum("bhwd,bld->bhwl", query, fc) / np.sqrt(QUERY_DIM)
        weights = np.where(mask, weights, 0.0)
    else:
        hidden = np.tanh(
            (query @ w["U"])[:, :, :, None, :]
            + (memory @ w["W_m"] + w["b_m"])[:, None, None, :, :]
        )
        weights = reference_softmax(hidden @ w["w"], mask)
    attended = np.einsum("bhwl,blk->bhwk", weights, memory)
    return attended, weights


def random_weights(layer, form, seed=1):
    rng = np.random.default_rng(seed)

    def draw(*shape):
        return rng.normal(0.0, 0.7, size=shape).astype("float32")

    if form == "bilinear":
        w = {"W": draw(QUERY_DIM, MEMORY_DIM)}
        layer.bilinear_kernel.assign(w["W"])
        return w
    hidden = QUERY_DIM if form == "scaled_dot" else UNITS
    w = {"W_m": draw(MEMORY_DIM, hidden), "b_m": draw(hidden)}
    layer.memory_kernel.assign(w["W_m"])
    layer.memory_bias.assign(w["b_m"])
    if form == "additive":
        w["U"] = draw(QUERY_DIM, hidden)
        w["w"] = draw(hidden)
        layer.query_kernel.assign(w["U"])
        layer.score_kernel.assign(w["w"])
    return w


def built_layer(form, units):
    query, memory = make_inputs()
    layer = TextAttention(form, units=units)
    layer.build(query.shape, memory.shape)
    return layer, random_weights(layer, form)


@pytest.mark.parametrize("form, units", FORMS)
def test_matches_numpy_reference_with_mask(form, units):
    query, memory = make_inputs()
    layer, w = built_layer(form, units)
    attended, weights = layer(query, memory, mask=MASK)
    want_attended, want_weights = reference_attention(
        form, query, memory, MASK, w
    )
    np.testing.assert_allclose(weights, want_weights, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(attended, want_attended, atol=1e-5, rtol=1e-5)
    # Padded words get exactly zero weight; a fully padded row gives zeros.
    padded = np.broadcast_to(~MASK[:, None, None, :], weights.shape)
    assert np.all(np.asarray(weights)[padded] == 0.0)
    np.testing.assert_array_equal(attended[2], 0.0)
    if form != "scaled_dot":
        np.testing.assert_allclose(np.sum(weights[:2], axis=-1), 1.0, atol=1e-6)


def test_scaled_dot_has_no_softmax():
    query, memory = make_inputs()
    layer, _ = built_layer("scaled_dot", None)
    _, weights = layer(query, memory)
    weights = np.asarray(weights)
    assert weights.min() < 0.0
    assert not np.allclose(weights.sum(-1), 1.0)


@pytest.mark.parametrize("form, units", FORMS)
def test_no_mask_equals_all_true_mask(form, units):
    query, memory = make_inputs()
    layer, w = built_layer(form, units)
    all_true = np.ones((BATCH, WORDS), dtype=bool)
    without = layer(query, memory)
    with_mask = layer(query, memory, mask=all_true)
    for a, b in zip(without, with_mask, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(
        without[1],
        reference_attention(form, query, memory, all_true, w)[1],
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("form, units", FORMS)
def test_huge_padded_words_change_nothing(form, units):
    query, memory = make_inputs()
    layer, _ = built_layer(form, units)
    garbage = memory.copy()
    garbage[~MASK] = 1e4
    for a, b in zip(
        layer(query, memory, mask=MASK),
        layer(query, garbage, mask=MASK),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("form, units", FORMS)
def test_gradients_are_finite_with_a_fully_masked_row(form, units):
    query, memory = make_inputs()
    layer, _ = built_layer(form, units)
    query = tf.constant(query)
    with tf.GradientTape() as tape:
        tape.watch(query)
        attended, weights = layer(query, memory, mask=MASK)
        loss = tf.reduce_sum(attended**2) + tf.reduce_sum(weights**2)
    grads = tape.gradient(loss, [query, *layer.trainable_weights])
    for grad in grads:
        assert np.all(np.isfinite(np.asarray(grad)))
    assert np.any(np.asarray(grads[0]) != 0.0)


def test_use_bias_false_has_no_bias():
    query, memory = make_inputs()
    for form, units in FORMS[1:]:
        layer = TextAttention(form, units=units, use_bias=False)
        layer.build(query.shape, memory.shape)
        assert not any("bias" in v.name for v in layer.weights)


@pytest.mark.parametrize("form, units", FORMS)
def test_checklist(form, units):
    query, memory = make_inputs()
    run_layer_checklist(
        lambda: TextAttention(form, units=units, seed=3),
        [query, memory, MASK],
        [
            (BATCH, HEIGHT, WIDTH, MEMORY_DIM),
            (BATCH, HEIGHT, WIDTH, WORDS),
        ],
        call_fn=lambda layer, x: layer(x[0], x[1], mask=x[2]),
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"form": "dot"}, "form"),
        ({"form": "additive"}, "units"),
        ({"form": "additive", "units": 0}, "units"),
        ({"form": "bilinear", "units": 4}, "units"),
        ({"form": "bilinear", "seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TextAttention(**kwargs)


def test_bad_ranks_raise():
    layer = TextAttention()
    with pytest.raises(ValueError, match="query"):
        layer.build((2, 3, 4), (2, 5, 3))
    with pytest.raises(ValueError, match="memory"):
        layer.build((2, 3, 3, 4), (2, 5))
