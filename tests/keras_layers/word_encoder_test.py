"""Tests of the word-level LSTM/BiLSTM encoder against a NumPy LSTM."""

import os
import tempfile

import keras
import numpy as np
import pytest

from keras_layers.word_encoder import WordEncoder
from tests.layer_checklist import run_layer_checklist


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(inputs, kernel, recurrent_kernel, bias, mask=None):
    """The standard LSTM equations with Keras' gate order i, f, c, o.

    i = sigmoid(x W_i + h U_i + b_i), f = sigmoid(x W_f + h U_f + b_f),
    c' = f * c + i * tanh(x W_c + h U_c + b_c), o = sigmoid(x W_o + ...),
    h' = o * tanh(c'). A masked step keeps h and c.

    Args:
      inputs: (B, L, D); kernel (D, 4K); recurrent_kernel (K, 4K); bias (4K,).
      mask: optional (B, L) booleans.

    Returns:
      (B, L, K) hidden states (a masked step repeats the previous one).
    """
    batch, length, _ = inputs.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(length):
        z = inputs[:, t] @ kernel + h @ recurrent_kernel + bias
        i = _sigmoid(z[:, :units])
        f = _sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = _sigmoid(z[:, 3 * units :])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if mask is not None:
            keep = mask[:, t : t + 1]
            c_new = np.where(keep, c_new, c)
            h_new = np.where(keep, h_new, h)
        h, c = h_new, c_new
        outputs.append(h)
    return np.stack(outputs, axis=1)


def lstm_weights(lstm, rng=None):
    """The (kernel, recurrent kernel, bias) of a Keras LSTM as float64.

    With `rng`, the bias is first set to random values so that the
    reference also checks how the bias enters.
    """
    cell = lstm.cell
    if rng is not None:
        cell.bias.assign(rng.uniform(-1, 1, cell.bias.shape))
    return tuple(
        np.asarray(w, "float64")
        for w in (cell.kernel, cell.recurrent_kernel, cell.bias)
    )


def numpy_encoder(features, recurrent_layer, bidirectional, mask=None):
    """Per-word outputs (B, L, K) of an LSTM or a concatenating BiLSTM."""
    if not bidirectional:
        return numpy_lstm(features, *lstm_weights(recurrent_layer), mask)
    forward = numpy_lstm(
        features, *lstm_weights(recurrent_layer.forward_layer), mask
    )
    reverse_mask = None if mask is None else mask[:, ::-1]
    backward = numpy_lstm(
        features[:, ::-1],
        *lstm_weights(recurrent_layer.backward_layer),
        reverse_mask,
    )[:, ::-1]
    return np.concatenate([forward, backward], axis=-1)


def _token_ids(seed=0, batch=2, length=5, vocabulary_size=7):
    rng = np.random.default_rng(seed)
    return rng.integers(1, vocabulary_size, (batch, length)).astype("int32")


def _randomise_biases(encoder, rng):
    layer = encoder.recurrent_layer
    for lstm in (
        [layer.forward_layer, layer.backward_layer]
        if encoder.bidirectional
        else [layer]
    ):
        lstm_weights(lstm, rng)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("embedding", ["one_hot", "learned"])
def test_equals_numpy_lstm(bidirectional, embedding):
    ids = _token_ids()
    encoder = WordEncoder(
        3,
        7,
        embedding=embedding,
        embedding_dim=None if embedding == "one_hot" else 4,
        bidirectional=bidirectional,
        seed=11,
    )
    encoder.build(ids.shape)
    _randomise_biases(encoder, np.random.default_rng(1))
    if embedding == "one_hot":
        features = np.eye(7)[ids]
    else:
        features = np.asarray(encoder.embedding_layer.embeddings)[ids]
    expected = numpy_encoder(features, encoder.recurrent_layer, bidirectional)
    np.testing.assert_allclose(encoder(ids), expected, atol=1e-5)

    last = WordEncoder(
        3,
        7,
        embedding=embedding,
        embedding_dim=None if embedding == "one_hot" else 4,
        bidirectional=bidirectional,
        return_sequences=False,
    )
    last.build(list(ids.shape))  # build() accepts lists too.
    last.set_weights(encoder.get_weights())
    units = 3
    # Forward: state after the last word; backward: after the first.
    expected_last = expected[:, -1]
    if bidirectional:
        expected_last = np.concatenate(
            [expected[:, -1, :units], expected[:, 0, units:]], axis=-1
        )
    np.testing.assert_allclose(last(ids), expected_last, atol=1e-5)
    assert last.output_dim == (6 if bidirectional else 3)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_left_padding_is_masked(bidirectional):
    words = _token_ids(seed=2, batch=1, length=3)
    padded = np.concatenate([np.zeros((1, 4), "int32"), words], axis=1)
    encoder = WordEncoder(
        3,
        7,
        bidirectional=bidirectional,
        return_sequences=False,
        mask_zero=True,
        seed=5,
    )
    np.testing.assert_allclose(encoder(padded), encoder(words), atol=1e-6)
    expected = numpy_encoder(
        np.eye(7)[padded],
        encoder.recurrent_layer,
        bidirectional,
        mask=padded != 0,
    )
    last = expected[:, -1]
    if bidirectional:
        last = np.concatenate([expected[:, -1, :3], expected[:, 4, 3:]], -1)
    np.testing.assert_allclose(encoder(padded), last, atol=1e-5)

    # Without the mask the padding is read as words (Hu et al.'s code).
    unmasked = WordEncoder(
        3, 7, bidirectional=bidirectional, return_sequences=False
    )
    unmasked.build(padded.shape)
    unmasked.set_weights(encoder.get_weights())
    assert not np.allclose(unmasked(padded), encoder(words), atol=1e-4)


def test_mask_is_passed_on():
    ids = np.array([[0, 0, 3, 4]], "int32")
    encoder = WordEncoder(2, 7, mask_zero=True)
    np.testing.assert_array_equal(
        encoder.compute_mask(ids), [[False, False, True, True]]
    )
    assert WordEncoder(2, 7).compute_mask(ids) is None


def test_frozen_pretrained_vectors():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((7, 4)).astype("float32")
    encoder = WordEncoder(
        3, 7, embedding="frozen", embeddings_initializer=vectors, seed=0
    )
    ids = _token_ids(seed=4)
    outputs = encoder(ids)
    np.testing.assert_allclose(encoder.embedding_layer.embeddings, vectors)
    assert encoder.embedding_dim == 4
    assert not encoder.embedding_layer.trainable
    trainable = {w.path for w in encoder.trainable_weights}
    assert not any("embedding" in p for p in trainable)
    assert encoder.get_config()["embeddings_initializer"] is None

    inputs = keras.Input((5,), dtype="int32")
    model = keras.Model(inputs, encoder(inputs))
    model.compile("sgd", "mse")
    model.fit(ids, np.ones_like(outputs), epochs=1, verbose=0)
    np.testing.assert_allclose(encoder.embedding_layer.embeddings, vectors)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "frozen.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(ids), model(ids), atol=1e-6)


def test_seed_makes_weights_reproducible():
    ids = _token_ids()
    a = WordEncoder(3, 7, bidirectional=True, seed=9)
    b = WordEncoder(3, 7, bidirectional=True, seed=9)
    np.testing.assert_allclose(a(ids), b(ids))
    forward = a.recurrent_layer.forward_layer.cell.kernel
    backward = a.recurrent_layer.backward_layer.cell.kernel
    assert not np.allclose(forward, backward)


def test_forget_bias_initialisation():
    ids = _token_ids()
    with_bias = WordEncoder(3, 7, unit_forget_bias=True)
    without = WordEncoder(3, 7, unit_forget_bias=False)
    with_bias(ids)
    without(ids)
    np.testing.assert_array_equal(
        with_bias.recurrent_layer.cell.bias, [0] * 3 + [1] * 3 + [0] * 6
    )
    np.testing.assert_array_equal(without.recurrent_layer.cell.bias, 0)


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({}, (2, 5, 3)),
        ({"return_sequences": False}, (2, 3)),
        ({"bidirectional": True, "mask_zero": True}, (2, 5, 6)),
        (
            {
                "embedding": "learned",
                "embedding_dim": 4,
                "embeddings_initializer": "ones",
                "return_sequences": False,
                "bidirectional": True,
            },
            (2, 6),
        ),
    ],
)
def test_checklist(kwargs, shape):
    ids = _token_ids(seed=6)
    ids[0, :2] = 0
    run_layer_checklist(lambda: WordEncoder(3, 7, seed=1, **kwargs), ids, shape)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"units": 0}, "units"),
        ({"units": -2}, "units"),
        ({"vocabulary_size": 0}, "vocabulary_size"),
        ({"embedding": "glove"}, "embedding"),
        ({"embedding": "learned"}, "embedding_dim"),
        ({"embedding": "learned", "embedding_dim": -1}, "embedding_dim"),
        ({"embedding_dim": 4}, "embedding_dim"),
        ({"embeddings_initializer": "ones"}, "embeddings_initializer"),
        (
            {
                "embedding": "frozen",
                "embeddings_initializer": np.zeros((3, 4)),
            },
            "embeddings_initializer",
        ),
        (
            {
                "embedding": "frozen",
                "embedding_dim": 5,
                "embeddings_initializer": np.zeros((7, 4)),
            },
            "embedding_dim",
        ),
        ({"seed": "one"}, "seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    arguments = {"units": 3, "vocabulary_size": 7, **kwargs}
    with pytest.raises(ValueError, match=name):
        WordEncoder(**arguments)


def test_bad_input_rank():
    with pytest.raises(ValueError, match="rank-2"):
        WordEncoder(3, 7)(np.zeros((2, 3, 4), "int32"))
