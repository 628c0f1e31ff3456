"""Tests of ConvGRUCell and ConvGRU against a NumPy C-GRU from the paper."""

import itertools

import keras
import numpy as np
import pytest

from keras_layers.conv_gru import ConvGRU, ConvGRUCell
from tests.layer_checklist import run_layer_checklist

FILTERS, CHANNELS = 3, 2


def conv2d_same(x, kernel):
    """Stride-1 'same' cross-correlation, (B, H, W, C) x (kh, kw, C, F)."""
    kh, kw = kernel.shape[:2]
    _, height, width, _ = x.shape
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            out = out + padded[:, i : i + height, j : j + width] @ kernel[i, j]
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_cell(u, s, w, reset_gate_target, update_convention):
    """The C-GRU of the paper, section 3, with the original code's options."""
    u, s = np.float64(u), np.float64(s)
    gate_z = conv2d_same(s, w["W1"]) + conv2d_same(u, w["W2"]) + w["b1"]
    r = sigmoid(conv2d_same(s, w["W3"]) + conv2d_same(u, w["W4"]) + w["b2"])
    if reset_gate_target == "state":
        c = conv2d_same(r * s, w["W5"]) + conv2d_same(u, w["W6"]) + w["b"]
    else:
        c = conv2d_same(s, w["W5"]) + conv2d_same(r * u, w["W6"]) + w["b"]
    c = np.maximum(c, 0.0)
    if update_convention == "paper":
        z = sigmoid(gate_z)
        h = (1.0 - z) * s + z * c
    else:
        u_gate = sigmoid(gate_z)
        h = u_gate * s + (1.0 - u_gate) * c
    next_state = conv2d_same(h, w["W7"]) if "W7" in w else h
    return h, next_state


def random_weights(
    rng,
    kernel_size,
    channels,
    filters,
    reset_gate_target,
    output_projection,
    scale=0.5,
):
    k = (kernel_size, kernel_size)
    reset = filters if reset_gate_target == "state" else channels

    def draw(*shape):
        return rng.normal(0.0, scale, size=shape).astype("float32")

    w = {
        "W1": draw(*k, filters, filters),
        "W2": draw(*k, channels, filters),
        "W3": draw(*k, filters, reset),
        "W4": draw(*k, channels, reset),
        "W5": draw(*k, filters, filters),
        "W6": draw(*k, channels, filters),
        "b1": draw(filters),
        "b2": draw(reset),
        "b": draw(filters),
    }
    if output_projection:
        w["W7"] = draw(*k, filters, filters)
    return w


def load_weights(cell, w):
    """Writes paper-named weights into the cell's documented layout."""
    cell.recurrent_kernel.assign(np.concatenate([w["W1"], w["W3"]], -1))
    cell.input_kernel.assign(np.concatenate([w["W2"], w["W4"]], -1))
    cell.candidate_recurrent_kernel.assign(w["W5"])
    cell.candidate_input_kernel.assign(w["W6"])
    cell.gate_bias.assign(np.concatenate([w["b1"], w["b2"]]))
    cell.candidate_bias.assign(w["b"])
    if "W7" in w:
        cell.output_kernel.assign(w["W7"])


def cell_inputs(rng, batch=2, size=4):
    u = rng.normal(size=(batch, size, size, CHANNELS)).astype("float32")
    s = rng.normal(size=(batch, size, size, FILTERS)).astype("float32")
    return u, s


@pytest.mark.parametrize(
    "kernel_size, reset_gate_target, output_projection, update_convention",
    list(
        itertools.product(
            (1, 3), ("state", "input"), (True, False), ("paper", "original")
        )
    ),
)
def test_cell_matches_numpy_reference(
    kernel_size, reset_gate_target, output_projection, update_convention
):
    rng = np.random.default_rng(kernel_size)
    u, s = cell_inputs(rng)
    cell = ConvGRUCell(
        FILTERS,
        kernel_size=kernel_size,
        reset_gate_target=reset_gate_target,
        output_projection=output_projection,
        update_convention=update_convention,
    )
    cell.build(u.shape, [s.shape])
    w = random_weights(
        rng,
        kernel_size,
        CHANNELS,
        FILTERS,
        reset_gate_target,
        output_projection,
    )
    load_weights(cell, w)
    h, [next_state] = cell(u, [s])
    want_h, want_next = reference_cell(
        u, s, w, reset_gate_target, update_convention
    )
    np.testing.assert_allclose(h, want_h, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(next_state, want_next, atol=1e-5, rtol=1e-5)
    if not output_projection:
        np.testing.assert_array_equal(h, next_state)


def test_conventions_are_the_same_family():
    # u = 1 - z: negating W1, W2 and b1 turns one convention into the other.
    rng = np.random.default_rng(7)
    u, s = cell_inputs(rng)
    w = random_weights(rng, 1, CHANNELS, FILTERS, "state", True)
    flipped = dict(w, W1=-w["W1"], W2=-w["W2"], b1=-w["b1"])
    outputs = []
    for convention, weights in (("paper", w), ("original", flipped)):
        cell = ConvGRUCell(FILTERS, update_convention=convention)
        cell.build(u.shape, [s.shape])
        load_weights(cell, weights)
        outputs.append(np.asarray(cell(u, [s])[0]))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


@pytest.mark.parametrize("reset_gate_target", ["state", "input"])
def test_gate_bias_initializer_sets_both_gate_biases(reset_gate_target):
    cell = ConvGRUCell(
        FILTERS,
        gate_bias_initializer=0.5,
        reset_gate_target=reset_gate_target,
        bias_initializer="ones",
    )
    cell.build((None, 4, 4, CHANNELS), [(None, 4, 4, FILTERS)])
    reset = FILTERS if reset_gate_target == "state" else CHANNELS
    np.testing.assert_array_equal(cell.gate_bias, np.full(FILTERS + reset, 0.5))
    np.testing.assert_array_equal(cell.candidate_bias, np.ones(FILTERS))


def test_no_output_projection_has_no_w7():
    cell = ConvGRUCell(FILTERS, output_projection=False)
    cell.build((None, 4, 4, CHANNELS), [(None, 4, 4, FILTERS)])
    assert cell.output_kernel is None
    assert "output_kernel" not in [v.name for v in cell.weights]


def test_seed_makes_initial_weights_reproducible():
    shapes = ((None, 4, 4, CHANNELS), [(None, 4, 4, FILTERS)])
    a, b = ConvGRUCell(FILTERS, seed=3), ConvGRUCell(FILTERS, seed=3)
    a.build(*shapes)
    b.build(*shapes)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("with_initial_state", [True, False])
def test_layer_runs_the_cell_over_time(with_initial_state):
    rng = np.random.default_rng(11)
    steps = 3
    x = rng.normal(size=(2, steps, 4, 4, CHANNELS)).astype("float32")
    s0 = rng.normal(size=(2, 4, 4, FILTERS)).astype("float32")
    if not with_initial_state:
        s0 = np.zeros_like(s0)
    layer = ConvGRU(
        FILTERS, kernel_size=3, return_sequences=True, return_state=True
    )
    layer.build(x.shape)
    w = random_weights(rng, 3, CHANNELS, FILTERS, "state", True, scale=0.3)
    load_weights(layer.cell, w)
    if with_initial_state:
        sequence, final = layer(x, initial_state=s0)
    else:
        sequence, final = layer(x)
    state, want = s0, []
    for t in range(steps):
        h, state = reference_cell(x[:, t], state, w, "state", "paper")
        want.append(h)
    np.testing.assert_allclose(
        sequence, np.stack(want, 1), atol=1e-5, rtol=1e-5
    )
    np.testing.assert_allclose(final, state, atol=1e-5, rtol=1e-5)
    last_only = ConvGRU(FILTERS, kernel_size=3)
    last_only.build(x.shape)
    last_only.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        last_only(x, initial_state=s0), want[-1], atol=1e-5, rtol=1e-5
    )


def _cell_call(layer, inputs):
    h, [state] = layer(inputs[0], [inputs[1]])
    return [h, state]


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_cell_checklist(kernel_size):
    rng = np.random.default_rng(0)
    u, s = cell_inputs(rng, size=3)
    run_layer_checklist(
        lambda: ConvGRUCell(
            FILTERS, kernel_size=kernel_size, gate_bias_initializer=0.5, seed=1
        ),
        [u, s],
        [(2, 3, 3, FILTERS), (2, 3, 3, FILTERS)],
        call_fn=_cell_call,
    )


def test_layer_checklist():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 2, 3, 3, CHANNELS)).astype("float32")
    s0 = rng.normal(size=(2, 3, 3, FILTERS)).astype("float32")
    run_layer_checklist(
        lambda: ConvGRU(
            FILTERS,
            kernel_size=3,
            reset_gate_target="input",
            output_projection=False,
            return_sequences=True,
            return_state=True,
            seed=2,
        ),
        [x, s0],
        [(2, 2, 3, 3, FILTERS), (2, 3, 3, FILTERS)],
        call_fn=lambda layer, inputs: layer(inputs[0], initial_state=inputs[1]),
    )


def test_layer_in_sequential_model_without_initial_state():
    model = keras.Sequential(
        [keras.Input((2, 3, 3, CHANNELS)), ConvGRU(FILTERS, seed=0)]
    )
    assert model.output_shape == (None, 3, 3, FILTERS)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"filters": -1}, "filters"),
        ({"filters": 0}, "filters"),
        ({"filters": 2.5}, "filters"),
        ({"filters": 2, "kernel_size": 2}, "kernel_size"),
        ({"filters": 2, "padding": "causal"}, "padding"),
        ({"filters": 2, "kernel_size": 3, "padding": "valid"}, "padding"),
        ({"filters": 2, "reset_gate_target": "text"}, "reset_gate_target"),
        ({"filters": 2, "update_convention": "u"}, "update_convention"),
        ({"filters": 2, "gate_bias_initializer": "ones"}, "gate_bias"),
        ({"filters": 2, "seed": "1"}, "seed"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    for cls in (ConvGRUCell, ConvGRU):
        with pytest.raises(ValueError, match=name):
            cls(**kwargs)


def test_bad_ranks_raise():
    with pytest.raises(ValueError, match="inputs"):
        ConvGRUCell(2).build((None, 4, 4), [(None, 4, 4, 2)])
    with pytest.raises(ValueError, match="inputs"):
        ConvGRU(2).build((None, 4, 4, 2))
    with pytest.raises(ValueError, match="filters"):
        ConvGRUCell(2).build((None, 4, 4, 3), [(None, 4, 4, 5)])
