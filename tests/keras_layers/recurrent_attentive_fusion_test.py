"""Tests of RecurrentAttentiveFusion against a NumPy Algorithm 1."""

import keras
import numpy as np
import pytest

from keras_layers.recurrent_attentive_fusion import RecurrentAttentiveFusion
from keras_layers.temperature_schedules import ExponentialTemperature
from tests.layer_checklist import run_layer_checklist

BATCH, HEIGHT, WIDTH, UNITS = 2, 3, 2, 4
WORDS, TEXT_DIM, ATTENTION_UNITS = 5, 3, 6
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 1, 0]], dtype=bool)


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(BATCH, HEIGHT, WIDTH, UNITS)).astype("float32")
    text = rng.normal(size=(BATCH, WORDS, TEXT_DIM)).astype("float32")
    return image, text


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def conv2d_same(x, kernel):
    kh, kw = kernel.shape[:2]
    _, height, width, _ = x.shape
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            out = out + padded[:, i : i + height, j : j + width] @ kernel[i, j]
    return out


def softmax_over_real_words(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    exponentials = np.exp(scores - scores.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


def reference_attention(form, s, u, mask, w):
    """Paper section 3 (bilinear); spec section 2 item 4 (the others)."""
    mask = mask[:, None, None, :]
    if form == "bilinear":
        scores = np.einsum("bhwd,dk,blk->bhwl", s, w["W_a"], u)
        weights = softmax_over_real_words(scores, mask)
    elif form == "scaled_dot":
        keys = u @ w["W_m"] + w["b_m"]
        weights = np.einsum("bhwd,bld->bhwl", s, keys) / np.sqrt(s.shape[-1])
        weights = np.where(mask, weights, 0.0)
    else:
        hidden = np.tanh(
            (s @ w["U_q"])[:, :, :, None, :]
            + (u @ w["W_m"] + w["b_m"])[:, None, None, :, :]
        )
        weights = softmax_over_real_words(hidden @ w["w_s"], mask)
    return np.einsum("bhwl,blk->bhwk", weights, u), weights


def reference_cell(u_hat, s, w, reset_gate_target, update_convention):
    """The C-GRU of the paper, section 3, with the original code's options."""
    gate = conv2d_same(s, w["W1"]) + conv2d_same(u_hat, w["W2"]) + w["b1"]
    r = sigmoid(conv2d_same(s, w["W3"]) + conv2d_same(u_hat, w["W4"]) + w["b2"])
    if reset_gate_target == "state":
        c = conv2d_same(r * s, w["W5"]) + conv2d_same(u_hat, w["W6"])
    else:
        c = conv2d_same(s, w["W5"]) + conv2d_same(r * u_hat, w["W6"])
    c = np.maximum(c + w["b"], 0.0)
    z = sigmoid(gate)
    if update_convention == "paper":
        h = (1.0 - z) * s + z * c
    else:
        h = z * s + (1.0 - z) * c
    return h, (conv2d_same(h, w["W7"]) if "W7" in w else h)


def reference_kept_step(gates, threshold=0.5):
    """The gate's inference choice per region (Algorithm 1): the first step
    t < T whose gate reaches `threshold`, else step T. 0-based."""
    steps = gates.shape[-1]
    kept = np.full(gates.shape[:-1], steps - 1)
    for region in np.ndindex(gates.shape[:-1]):
        for t in range(steps - 1):
            if gates[region][t] >= threshold:
                kept[region] = t
                break
    return kept


def reference_gates(states, w):
    """g^t = sigmoid(w^T S^{t+1} + b) per region, steps on the last axis."""
    return np.stack([sigmoid(s @ w["g_w"] + w["g_b"]) for s in states], -1)


def reference_fusion(v, u, mask, w, options):
    """Algorithm 1 with the deterministic inference rule of the gate."""
    v, u = np.float64(v), np.float64(u)
    state, outputs, states, attention = v, [], [], []
    for _ in range(options["num_steps"]):
        u_hat, weights = reference_attention(
            options["attention_form"], state, u, mask, w
        )
        h, state = reference_cell(
            u_hat,
            state,
            w,
            options["reset_gate_target"],
            options["update_convention"],
        )
        outputs.append(h)
        states.append(state)
        attention.append(weights.reshape(BATCH, HEIGHT * WIDTH, WORDS))
    result = {
        "fused": outputs[-1],
        "step_outputs": np.stack(outputs, 1),
        "attention_weights": np.stack(attention, -1),
    }
    if options["termination"] == "gumbel":
        gates = reference_gates(states, w)
        steps = gates.shape[-1]
        beta = np.stack(
            [
                np.prod(1 - gates[..., :t], -1)
                * (gates[..., t] if t < steps - 1 else 1.0)
                for t in range(steps)
            ],
            -1,
        )
        first = reference_kept_step(gates)
        result["fused"] = np.take_along_axis(
            np.stack(outputs, -1), first[..., None, None], -1
        )[..., 0]
        result["stop_probabilities"] = beta
        result["stop_step"] = first
    return result


def randomize_and_copy_weights(layer, seed=1):
    """Gives every weight random values and returns them under paper names."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        variable.assign(
            rng.normal(0.0, 0.5, size=variable.shape).astype("float32")
        )
    attention, cell, w = layer.attention, layer.cell, {}
    if layer.attention_form == "bilinear":
        w["W_a"] = np.asarray(attention.bilinear_kernel)
    else:
        w["W_m"] = np.asarray(attention.memory_kernel)
        w["b_m"] = np.asarray(attention.memory_bias)
    if layer.attention_form == "additive":
        w["U_q"] = np.asarray(attention.query_kernel)
        w["w_s"] = np.asarray(attention.score_kernel)
    units = cell.filters
    recurrent = np.asarray(cell.recurrent_kernel)
    inputs = np.asarray(cell.input_kernel)
    bias = np.asarray(cell.gate_bias)
    w.update(
        W1=recurrent[..., :units],
        W3=recurrent[..., units:],
        W2=inputs[..., :units],
        W4=inputs[..., units:],
        b1=bias[:units],
        b2=bias[units:],
        W5=np.asarray(cell.candidate_recurrent_kernel),
        W6=np.asarray(cell.candidate_input_kernel),
        b=np.asarray(cell.candidate_bias),
    )
    if cell.output_kernel is not None:
        w["W7"] = np.asarray(cell.output_kernel)
    if layer.termination_gate is not None:
        w["g_w"] = np.asarray(layer.termination_gate.gate_kernel)
        w["g_b"] = np.asarray(layer.termination_gate.gate_bias)
    return w


CASES = [
    dict(num_steps=1, attention_form="bilinear", termination="gumbel"),
    dict(num_steps=2, attention_form="bilinear", termination="gumbel"),
    dict(
        num_steps=2,
        attention_form="scaled_dot",
        termination="none",
        reset_gate_target="input",
        output_projection=False,
        update_convention="original",
    ),
    dict(
        num_steps=2,
        attention_form="additive",
        attention_units=ATTENTION_UNITS,
        termination="last",
        kernel_size=3,
    ),
    dict(
        num_steps=3,
        attention_form="bilinear",
        termination="gumbel",
        kernel_size=3,
        reset_gate_target="input",
        output_projection=False,
    ),
    dict(num_steps=1, attention_form="scaled_dot", termination="last"),
]


def full_options(case):
    options = dict(
        reset_gate_target="state",
        update_convention="paper",
        output_projection=True,
    )
    options.update(case)
    return options


@pytest.mark.parametrize("case", CASES)
def test_matches_numpy_algorithm_1(case):
    image, text = make_inputs()
    gumbel = case["termination"] == "gumbel"
    layer = RecurrentAttentiveFusion(
        UNITS,
        return_sequences=True,
        return_attention=True,
        return_stop_probabilities=gumbel,
        return_stop_step=gumbel,
        **case,
    )
    layer.build(image.shape, text.shape)
    w = randomize_and_copy_weights(layer)
    got = layer(image, text, mask=MASK, training=False)
    want = reference_fusion(image, text, MASK, w, full_options(case))
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(
            got[key], want[key], atol=2e-5, rtol=1e-4, err_msg=key
        )
    if gumbel:
        assert got["stop_step"].dtype == "int32"


def test_stop_step_is_the_gates_decision_and_keeps_step_t_in_warmup():
    image, text = make_inputs(1)
    layer = RecurrentAttentiveFusion(
        UNITS,
        num_steps=4,
        termination_warmup_steps=1,
        return_sequences=True,
        return_stop_step=True,
        seed=0,
    )
    layer.build(image.shape, text.shape)
    # These weights make every step the kept one somewhere.
    w = randomize_and_copy_weights(layer, seed=1)
    gate = layer.termination_gate
    # Until the gate has had a training batch after its warm-up, every
    # region keeps the last step.
    for counter in (0, 1):
        gate.step.assign(counter)
        got = layer(image, text, mask=MASK, training=False)
        np.testing.assert_array_equal(got["stop_step"], 3)
        np.testing.assert_allclose(got["fused"], got["step_outputs"][:, 3])
    gate.step.assign(2)
    got = layer(image, text, mask=MASK, training=False)
    want = reference_fusion(
        image,
        text,
        MASK,
        w,
        full_options(
            dict(num_steps=4, attention_form="bilinear", termination="gumbel")
        ),
    )
    np.testing.assert_array_equal(got["stop_step"], want["stop_step"])
    assert len(np.unique(want["stop_step"])) == 4
    kept = np.take_along_axis(
        np.moveaxis(np.asarray(got["step_outputs"]), 1, -1),
        np.asarray(got["stop_step"])[..., None, None],
        -1,
    )[..., 0]
    np.testing.assert_allclose(got["fused"], kept, atol=1e-6)


@pytest.mark.parametrize("termination", ["gumbel", "last", "none"])
def test_single_step_is_one_attention_and_cell_step(termination):
    image, text = make_inputs(3)
    layer = RecurrentAttentiveFusion(
        UNITS, num_steps=1, termination=termination, seed=0
    )
    layer.build(image.shape, text.shape)
    w = randomize_and_copy_weights(layer, seed=4)
    u_hat, _ = reference_attention(
        "bilinear", np.float64(image), np.float64(text), MASK, w
    )
    want, _ = reference_cell(u_hat, np.float64(image), w, "state", "paper")
    for training in (False, True):
        np.testing.assert_allclose(
            layer(image, text, mask=MASK, training=training),
            want,
            atol=2e-5,
            rtol=1e-4,
        )


def test_training_picks_one_step_per_region_with_straight_through():
    image, text = make_inputs(5)
    layer = RecurrentAttentiveFusion(
        UNITS,
        num_steps=3,
        straight_through=True,
        temperature=0.5,
        return_sequences=True,
        seed=2,
    )
    got = layer(image, text, training=True)
    steps = np.asarray(got["step_outputs"])
    fused = np.asarray(got["fused"])[:, None]
    distance = np.abs(steps - fused).max(-1)  # (B, T, H, W)
    assert np.all(distance.min(1) < 1e-5)


def test_termination_initial_bias_and_warmup_reach_the_gate():
    image, text = make_inputs(6)
    layer = RecurrentAttentiveFusion(
        UNITS,
        num_steps=3,
        termination_initial_bias=-2.5,
        termination_warmup_steps=7,
        termination_warmup_selection="uniform",
        seed=1,
    )
    layer(image, text)
    assert float(layer.termination_gate.gate_bias) == -2.5
    assert layer.termination_gate.warmup_steps == 7
    clone = RecurrentAttentiveFusion.from_config(layer.get_config())
    assert clone.termination_gate.initial_bias == -2.5
    assert clone.termination_gate.warmup_steps == 7
    assert clone.termination_gate.warmup_selection == "uniform"


def test_weights_are_shared_over_steps():
    image, text = make_inputs()
    counts = []
    for steps in (1, 4):
        layer = RecurrentAttentiveFusion(UNITS, num_steps=steps)
        layer.build(image.shape, text.shape)
        counts.append([tuple(v.shape) for v in layer.weights])
    assert counts[0] == counts[1]


def test_variable_text_length_in_a_functional_model():
    image = keras.Input((HEIGHT, WIDTH, UNITS))
    text = keras.Input((None, TEXT_DIM))
    mask = keras.Input((None,), dtype="bool")
    layer = RecurrentAttentiveFusion(
        UNITS, num_steps=2, return_attention=True, seed=1
    )
    outputs = layer(image, text, mask=mask)
    model = keras.Model([image, text, mask], outputs)
    rng = np.random.default_rng(0)
    for words in (3, 7):
        result = model(
            [
                rng.normal(size=(2, HEIGHT, WIDTH, UNITS)).astype("float32"),
                rng.normal(size=(2, words, TEXT_DIM)).astype("float32"),
                np.ones((2, words), bool),
            ]
        )
        assert result["attention_weights"].shape == (
            2,
            HEIGHT * WIDTH,
            words,
            2,
        )


def _fusion_call(layer, inputs):
    return layer(inputs[0], inputs[1], mask=inputs[2])


@pytest.mark.parametrize(
    "kwargs, shapes, changes",
    [
        (
            dict(
                num_steps=2,
                temperature=0.5,
                return_sequences=True,
                return_attention=True,
                return_stop_probabilities=True,
            ),
            [
                (BATCH, HEIGHT * WIDTH, WORDS, 2),
                (BATCH, HEIGHT, WIDTH, UNITS),
                (BATCH, 2, HEIGHT, WIDTH, UNITS),
                (BATCH, HEIGHT, WIDTH, 2),
            ],
            True,
        ),
        (
            # The int stop step: config, shapes and the .keras round trip
            # (the checklist fits only models with float outputs).
            dict(num_steps=3, temperature=0.5, return_stop_step=True),
            [(BATCH, HEIGHT, WIDTH, UNITS), (BATCH, HEIGHT, WIDTH)],
            True,
        ),
        (
            dict(
                num_steps=3,
                attention_form="additive",
                attention_units=ATTENTION_UNITS,
                termination="last",
                kernel_size=3,
            ),
            (BATCH, HEIGHT, WIDTH, UNITS),
            False,
        ),
        (
            dict(
                num_steps=2,
                attention_form="scaled_dot",
                termination="none",
                output_projection=False,
                reset_gate_target="input",
                gate_bias_initializer=0.5,
                update_convention="original",
                return_sequences=True,
            ),
            [(BATCH, HEIGHT, WIDTH, UNITS), (BATCH, 2, HEIGHT, WIDTH, UNITS)],
            False,
        ),
    ],
)
def test_checklist(kwargs, shapes, changes):
    image, text = make_inputs()
    run_layer_checklist(
        lambda: RecurrentAttentiveFusion(UNITS, seed=7, **kwargs),
        [image, text, MASK],
        shapes,
        call_fn=_fusion_call,
        training_changes_output=changes,
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"units": -1}, "units"),
        ({"units": 0}, "units"),
        ({"units": 4, "num_steps": 0}, "num_steps"),
        ({"units": 4, "num_steps": 1.5}, "num_steps"),
        ({"units": 4, "attention_form": "dot"}, "attention_form"),
        ({"units": 4, "attention_form": "additive"}, "attention_units"),
        ({"units": 4, "attention_units": 8}, "attention_units"),
        ({"units": 4, "termination": "act"}, "termination"),
        (
            {"units": 4, "termination": "last", "return_stop_probabilities": 1},
            "termination",
        ),
        (
            {"units": 4, "termination": "none", "return_stop_step": True},
            "return_stop_step",
        ),
        ({"units": 4, "temperature": -1.0}, "temperature"),
        ({"units": 4, "kernel_size": 2}, "kernel_size"),
        ({"units": 4, "reset_gate_target": "text"}, "reset_gate_target"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RecurrentAttentiveFusion(**kwargs)


def test_bad_inputs_raise():
    image, text = make_inputs()
    layer = RecurrentAttentiveFusion(UNITS, num_steps=2)
    with pytest.raises(ValueError, match="image_features"):
        layer(image[:, 0], text)
    with pytest.raises(ValueError, match="text_features"):
        layer(image, text[:, 0])
    with pytest.raises(ValueError, match="units"):
        layer(image[..., :3], text)
    with pytest.raises(ValueError, match="batch size"):
        layer(image, np.concatenate([text, text]))
    layer(image, text)
    # Checked at every call, not only when the layer is built.
    with pytest.raises(ValueError, match="batch size"):
        layer(image, text[:1])


def test_save_and_reload_keeps_schedule_and_step_counter(tmp_path):
    image, text = make_inputs()
    schedule = ExponentialTemperature(2.0, 0.5, 10, minimum=0.1)
    inputs = [
        keras.Input((HEIGHT, WIDTH, UNITS)),
        keras.Input((WORDS, TEXT_DIM)),
    ]
    layer = RecurrentAttentiveFusion(
        UNITS, num_steps=2, temperature=schedule, seed=3
    )
    model = keras.Model(inputs, layer(*inputs))
    for _ in range(2):
        model([image, text], training=True)
    path = str(tmp_path / "fusion.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    gate = reloaded.layers[-1].termination_gate
    assert gate.temperature_schedule == schedule
    assert int(gate.step.numpy()) == 2
    np.testing.assert_allclose(
        reloaded([image, text]), model([image, text]), atol=1e-6
    )
