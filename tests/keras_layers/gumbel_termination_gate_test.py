"""Tests of the paper's termination gate: stop distribution and sampling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_layers.gumbel_termination_gate import (
    GumbelTerminationGate,
    stop_distribution,
    stop_log_distribution,
)
from keras_layers.temperature_schedules import (
    ConstantTemperature,
    LinearAnnealTemperature,
)
from tests.layer_checklist import run_layer_checklist


def reference_stop_distribution(gates):
    """beta^t = g_t prod_{k<t}(1 - g_k); the rest of the mass on step T."""
    gates = np.float64(gates)
    steps = gates.shape[-1]
    beta = np.zeros_like(gates)
    for t in range(steps):
        reach = np.prod(1.0 - gates[..., :t], axis=-1)
        beta[..., t] = reach * (gates[..., t] if t < steps - 1 else 1.0)
    return beta


def reference_kept_step(gates, threshold, warming_up=False):
    """The step each region keeps at inference (Algorithm 1): the first
    step t < T whose gate reaches `threshold`, else step T (the gate of
    step T is not read); step T while the gate warms up. 0-based."""
    steps = gates.shape[-1]
    kept = np.full(gates.shape[:-1], steps - 1)
    if warming_up:
        return kept
    for region in np.ndindex(gates.shape[:-1]):
        for t in range(steps - 1):
            if gates[region][t] >= threshold:
                kept[region] = t
                break
    return kept


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gate_reading_channel_zero(states, **kwargs):
    """A gate whose logit is channel 0 of the state: g = sigmoid(s[0])."""
    gate = GumbelTerminationGate(**kwargs)
    gate.build(states.shape, states.shape)
    kernel = np.zeros(states.shape[-1], "float32")
    kernel[0] = 1.0
    gate.gate_kernel.assign(kernel)
    gate.gate_bias.assign(0.0)
    return gate


def states_from_logits(logits, channels=2):
    """(B, H, W, T) logits -> (B, T, H, W, channels) states."""
    states = np.zeros((*logits.shape, channels), "float32")
    states[..., 0] = logits
    return np.moveaxis(states, 3, 1)


def one_hot_outputs(batch, steps, height, width):
    """Step outputs whose step t is the basis vector e_t (D = T)."""
    eye = np.eye(steps, dtype="float32")[None, :, None, None, :]
    return np.broadcast_to(eye, (batch, steps, height, width, steps)).copy()


@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_stop_distribution_matches_reference_and_sums_to_one(steps):
    gates = np.random.default_rng(steps).uniform(size=(2, 3, steps))
    beta = np.asarray(stop_distribution(gates.astype("float32")))
    np.testing.assert_allclose(
        beta, reference_stop_distribution(gates), atol=1e-6
    )
    np.testing.assert_allclose(beta.sum(-1), 1.0, atol=1e-6)


def test_stop_distribution_edge_cases():
    gates = np.array(
        [[0.0, 0.0, 0.0], [1.0, 0.3, 0.9], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        "float32",
    )
    want = [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    np.testing.assert_allclose(stop_distribution(gates), want, atol=1e-7)
    # T = 1: the only step takes all the mass whatever the gate says.
    np.testing.assert_allclose(stop_distribution(np.array([[0.2]])), [[1.0]])


def test_stop_log_distribution_is_stable_and_matches():
    logits = np.random.default_rng(0).normal(0, 2, size=(4, 3, 4))
    log_beta = np.asarray(stop_log_distribution(logits.astype("float32")))
    np.testing.assert_allclose(
        log_beta,
        np.log(reference_stop_distribution(sigmoid(logits))),
        atol=1e-5,
    )
    extreme = np.array([[100.0, -100.0, 100.0], [-100.0, -100.0, -100.0]])
    log_beta = np.asarray(stop_log_distribution(extreme.astype("float32")))
    assert np.all(np.isfinite(log_beta))
    np.testing.assert_allclose(log_beta[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(log_beta[1, -1], 0.0, atol=1e-6)
    np.testing.assert_allclose(log_beta[1, 0], -100.0, atol=1e-3)


def test_gate_probabilities_is_a_sigmoid_of_a_linear_map():
    rng = np.random.default_rng(1)
    states = rng.normal(size=(2, 3, 2, 2, 4)).astype("float32")
    gate = GumbelTerminationGate()
    gate.build(states.shape, states.shape)
    kernel = rng.normal(size=4).astype("float32")
    gate.gate_kernel.assign(kernel)
    gate.gate_bias.assign(0.3)
    want = np.moveaxis(sigmoid(states @ kernel + 0.3), 1, -1)
    np.testing.assert_allclose(gate.gate_probabilities(states), want, atol=1e-6)
    _, beta, _ = gate(one_hot_outputs(2, 3, 2, 2), states)
    np.testing.assert_allclose(
        beta, reference_stop_distribution(want), atol=1e-6
    )


@pytest.mark.parametrize("threshold", [0.5, 0.9])
def test_inference_stops_at_the_first_firing_step_else_the_last(threshold):
    # Gate values per region (steps on the last axis).
    gates = np.array(
        [
            [[0.1, 0.6, 0.95, 0.2], [0.7, 0.1, 0.1, 0.1]],
            [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.99]],
            [[0.5, 0.5, 0.5, 0.5], [0.2, 0.92, 0.1, 0.1]],
        ],
        "float32",
    )[None]  # (1, 3, 2, 4)
    states = states_from_logits(np.log(gates / (1.0 - gates)))
    outputs = np.random.default_rng(2).normal(size=(1, 4, 3, 2, 5))
    gate = gate_reading_channel_zero(states, threshold=threshold)
    first = reference_kept_step(gates, threshold)
    for training in (None, False):
        fused, _, stop_step = gate(
            outputs.astype("float32"), states, training=training
        )
        want = np.take_along_axis(
            np.moveaxis(outputs, 1, -1), first[:, :, :, None, None], -1
        )[..., 0]
        np.testing.assert_allclose(fused, want, atol=1e-6)
        # The emitted step is the one whose output was kept.
        assert stop_step.dtype == "int32"
        np.testing.assert_array_equal(stop_step, first)
    if threshold == 0.5:
        np.testing.assert_array_equal(first[0], [[1, 0], [3, 3], [0, 1]])
    assert int(gate.step.numpy()) == 0


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("steps", [2, 5])
def test_emitted_stop_step_matches_the_reference_rule(threshold, steps):
    rng = np.random.default_rng(steps)
    # Gates on a 0.05 grid offset by 0.025: never within 0.025 of a
    # threshold, so float32 rounding cannot flip a decision.
    gates = rng.integers(0, 20, size=(3, 4, 5, steps)) / 20 + 0.025
    states = states_from_logits(np.log(gates / (1.0 - gates)))
    outputs = one_hot_outputs(3, steps, 4, 5)
    gate = gate_reading_channel_zero(
        states, threshold=threshold, warmup_steps=1, seed=0
    )
    want = reference_kept_step(gates, threshold)
    assert 0 < np.mean(want == steps - 1) < 1
    # The counter at 0 (warming up) and at 1 (warm-up over, no gated
    # training batch yet) keeps step T; at 2 the gate decides.
    for counter, warming_up in ((0, True), (1, True), (2, False)):
        gate.step.assign(counter)
        fused, _, stop_step = gate(outputs, states, training=False)
        expected = reference_kept_step(gates, threshold, warming_up)
        np.testing.assert_array_equal(stop_step, expected)
        np.testing.assert_array_equal(np.argmax(fused, -1), expected)
    np.testing.assert_array_equal(stop_step, want)


@pytest.mark.parametrize("straight_through", [True, False])
def test_sampled_stop_steps_follow_beta(straight_through):
    # 20,000 regions with the same gates; the Gumbel-max trick makes the
    # argmax of z exactly Categorical(beta) at any temperature.
    gates = np.array([0.3, 0.5, 0.2, 0.6], "float32")
    beta = reference_stop_distribution(gates)
    batch, height, width, steps = 8, 50, 50, 4
    logits = np.broadcast_to(
        np.log(gates / (1.0 - gates)), (batch, height, width, steps)
    )
    states = states_from_logits(logits)
    gate = gate_reading_channel_zero(
        states, temperature=0.1, straight_through=straight_through, seed=5
    )
    outputs = one_hot_outputs(batch, steps, height, width)
    fused, stop_probabilities, stop_step = gate(outputs, states, training=True)
    fused = np.asarray(fused).reshape(-1, steps)
    np.testing.assert_allclose(
        np.asarray(stop_probabilities)[0, 0, 0], beta, atol=1e-6
    )
    # In training the emitted step is the sample's: argmax_t z (fused is z
    # for one-hot step outputs).
    np.testing.assert_array_equal(
        np.asarray(stop_step).reshape(-1), fused.argmax(-1)
    )
    if straight_through:
        # The forward pass is hard: every region picks exactly one step.
        np.testing.assert_array_equal(np.sort(fused, axis=-1)[:, :-1], 0.0)
        np.testing.assert_allclose(fused.max(-1), 1.0, atol=1e-6)
    counts = np.bincount(fused.argmax(-1), minlength=steps)
    expected = beta * len(fused)
    chi_square = np.sum((counts - expected) ** 2 / expected)
    assert chi_square < 16.27, (counts, expected)  # df = 3, p = 0.001
    np.testing.assert_allclose(counts / len(fused), beta, atol=0.015)


def test_training_mixes_softly_at_high_temperature():
    logits = np.zeros((1, 2, 2, 3), "float32")
    states = states_from_logits(logits)
    gate = gate_reading_channel_zero(states, temperature=100.0, seed=0)
    fused, _, _ = gate(one_hot_outputs(1, 3, 2, 2), states, training=True)
    # A very hot softmax is nearly uniform over the steps.
    np.testing.assert_allclose(fused, np.full((1, 2, 2, 3), 1 / 3), atol=0.02)


@pytest.mark.parametrize("straight_through", [True, False])
def test_gradients_reach_the_gate_parameters(straight_through):
    rng = np.random.default_rng(3)
    states = rng.normal(size=(2, 3, 2, 2, 4)).astype("float32")
    outputs = rng.normal(size=(2, 3, 2, 2, 5)).astype("float32")
    target = rng.normal(size=(2, 2, 2, 5)).astype("float32")
    gradients = {}
    for hard in (straight_through, not straight_through):
        gate = GumbelTerminationGate(
            temperature=0.5, straight_through=hard, seed=9
        )
        gate.build(states.shape, states.shape)
        gate.gate_kernel.assign(np.full(4, 0.3, "float32"))
        with tf.GradientTape() as tape:
            fused, _, _ = gate(outputs, states, training=True)
            loss = tf.reduce_sum(fused * target)
        grads = tape.gradient(loss, [gate.gate_kernel, gate.gate_bias])
        for grad in grads:
            assert grad is not None
            assert np.all(np.isfinite(grad))
            assert np.any(np.asarray(grad) != 0.0)
        gradients[hard] = grads
    # Straight-through: hard forward pass, the soft sample's gradient.
    for a, b in zip(gradients[True], gradients[False], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_step_counter_drives_the_temperature_schedule():
    rng = np.random.default_rng(4)
    states = rng.normal(size=(1, 3, 2, 2, 2)).astype("float32")
    outputs = rng.normal(size=(1, 3, 2, 2, 3)).astype("float32")

    def run(temperature, calls):
        gate = GumbelTerminationGate(temperature=temperature, seed=11)
        gate.build(states.shape, states.shape)
        gate.gate_kernel.assign(np.array([0.5, -0.5], "float32"))
        results = [
            np.asarray(gate(outputs, states, training=True)[0])
            for _ in range(calls)
        ]
        return gate, results

    schedule = LinearAnnealTemperature(initial=2.0, final=0.2, anneal_steps=1)
    gate, scheduled = run(schedule, 2)
    assert int(gate.step.numpy()) == 2
    _, hot = run(2.0, 1)
    _, cold = run(ConstantTemperature(0.2), 2)
    np.testing.assert_allclose(scheduled[0], hot[0], atol=1e-6)
    np.testing.assert_allclose(scheduled[1], cold[1], atol=1e-6)
    assert not np.allclose(scheduled[1], hot[0], atol=1e-3)


def test_step_counter_counts_fit_batches_and_is_saved():
    states = keras.Input((2, 3, 3, 4))
    outputs = keras.Input((2, 3, 3, 5))
    gate = GumbelTerminationGate(seed=0)
    fused, _, _ = gate(outputs, states)
    model = keras.Model([outputs, states], fused)
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(5)
    x = [
        rng.normal(size=(6, 2, 3, 3, 5)).astype("float32"),
        rng.normal(size=(6, 2, 3, 3, 4)).astype("float32"),
    ]
    model.fit(x, np.zeros((6, 3, 3, 5), "float32"), batch_size=2, verbose=0)
    assert int(gate.step.numpy()) == 3
    model.predict(x, verbose=0)
    assert int(gate.step.numpy()) == 3
    assert any(w.name == "step" for w in model.non_trainable_weights)


def test_single_step_always_uses_it():
    rng = np.random.default_rng(6)
    states = rng.normal(size=(2, 1, 2, 2, 3)).astype("float32")
    outputs = rng.normal(size=(2, 1, 2, 2, 4)).astype("float32")
    gate = GumbelTerminationGate(seed=1)
    for training in (True, False):
        fused, beta, stop_step = gate(outputs, states, training=training)
        np.testing.assert_allclose(fused, outputs[:, 0], atol=1e-6)
        np.testing.assert_allclose(beta, 1.0)
        assert stop_step.dtype == "int32"
        np.testing.assert_array_equal(stop_step, np.zeros((2, 2, 2)))


@pytest.mark.parametrize("straight_through", [True, False])
@pytest.mark.parametrize("with_stop_step", [True, False])
def test_checklist(straight_through, with_stop_step):
    rng = np.random.default_rng(7)
    outputs = rng.normal(size=(2, 3, 2, 2, 4)).astype("float32")
    states = rng.normal(size=(2, 3, 2, 2, 3)).astype("float32")
    shapes = [(2, 2, 2, 4), (2, 2, 2, 3), (2, 2, 2)]
    # The checklist's fit step needs float outputs only: without the int
    # stop step it fits, with it it checks the int output's round trip.
    kept = 3 if with_stop_step else 2
    run_layer_checklist(
        lambda: GumbelTerminationGate(
            temperature=ConstantTemperature(0.5),
            straight_through=straight_through,
            seed=3,
        ),
        [outputs, states],
        shapes[:kept],
        call_fn=lambda layer, x: layer(x[0], x[1])[:kept],
        training_changes_output=True,
    )


@pytest.mark.parametrize("initial_bias", [0.0, -3.0])
def test_initial_bias_sets_where_the_stop_mass_starts(initial_bias):
    rng = np.random.default_rng(2)
    # Zero states: the gate is sigmoid(bias) everywhere at initialisation.
    states = np.zeros((1, 4, 2, 2, 3), "float32")
    gate = GumbelTerminationGate(initial_bias=initial_bias, seed=1)
    _, beta, _ = gate(
        rng.normal(size=(1, 4, 2, 2, 5)).astype("float32"), states
    )
    want = reference_stop_distribution(
        np.full((1, 2, 2, 4), sigmoid(initial_bias))
    )
    np.testing.assert_allclose(beta, want, atol=1e-6)
    first, last = float(beta[0, 0, 0, 0]), float(beta[0, 0, 0, -1])
    if initial_bias == 0.0:
        assert first == pytest.approx(0.5) and last == pytest.approx(0.125)
    else:
        assert first < 0.05 and last > 0.85
    clone = GumbelTerminationGate.from_config(gate.get_config())
    assert clone.initial_bias == initial_bias


def test_warmup_selects_the_last_step_then_samples():
    outputs = one_hot_outputs(1, 3, 2, 2)
    # Every gate fires (logit 4): once trained, inference stops at step 1.
    states = states_from_logits(np.full((1, 2, 2, 3), 4.0, "float32"))
    gate = gate_reading_channel_zero(states, warmup_steps=2, seed=4)
    for _ in range(2):
        assert bool(gate.in_warmup(training=True))
        assert bool(gate.in_warmup())
        # Inference keeps step T too while warming up, and says so.
        fused, _, stop_step = gate(outputs, states, training=False)
        np.testing.assert_allclose(fused, outputs[:, 2])
        np.testing.assert_array_equal(stop_step, 2)
        fused, _, stop_step = gate(outputs, states, training=True)
        np.testing.assert_allclose(fused, outputs[:, 2], atol=1e-6)
        np.testing.assert_array_equal(stop_step, 2)
    # The warm-up is over, but the gate has had no training call yet:
    # inference still keeps step T.
    assert not bool(gate.in_warmup(training=True))
    assert bool(gate.in_warmup())
    fused, _, stop_step = gate(outputs, states, training=False)
    np.testing.assert_allclose(fused, outputs[:, 2])
    np.testing.assert_array_equal(stop_step, 2)
    fused, _, _ = gate(outputs, states, training=True)
    # After warm-up the soft Gumbel sample puts weight on every step, most
    # on step 1 where the gate fires.
    assert np.all(np.asarray(fused) > 0.0)
    assert np.all(np.argmax(fused, axis=-1) == 0)
    assert int(gate.step.numpy()) == 3
    assert not bool(gate.in_warmup())
    fused, _, stop_step = gate(outputs, states, training=False)
    np.testing.assert_allclose(fused, outputs[:, 0])
    np.testing.assert_array_equal(stop_step, 0)
    clone = GumbelTerminationGate.from_config(gate.get_config())
    assert clone.warmup_steps == 2


def test_uniform_warmup_draws_one_step_per_region():
    outputs = one_hot_outputs(2, 4, 8, 8)
    states = states_from_logits(np.full((2, 8, 8, 4), 4.0, "float32"))
    gate = gate_reading_channel_zero(
        states, warmup_steps=1, warmup_selection="uniform", seed=4
    )
    fused, _, stop_step = gate(outputs, states, training=True)
    fused = np.asarray(fused)
    # Hard one-hot choices, every step drawn about equally often.
    assert set(np.unique(fused)) == {0.0, 1.0}
    np.testing.assert_array_equal(fused.sum(-1), 1.0)
    counts = np.bincount(fused.argmax(-1).ravel(), minlength=4)
    assert counts.min() >= 16, counts
    np.testing.assert_array_equal(stop_step, fused.argmax(-1))
    # Inference keeps step T until the gate is trained.
    fused, _, stop_step = gate(outputs, states, training=False)
    np.testing.assert_allclose(fused, outputs[:, 3])
    np.testing.assert_array_equal(stop_step, 3)
    clone = GumbelTerminationGate.from_config(gate.get_config())
    assert clone.warmup_selection == "uniform"


def test_without_warmup_the_gate_decides_from_the_start():
    outputs = one_hot_outputs(1, 3, 2, 2)
    states = states_from_logits(np.full((1, 2, 2, 3), 4.0, "float32"))
    gate = gate_reading_channel_zero(states, seed=4)
    assert not bool(gate.in_warmup()) and not bool(gate.in_warmup(True))
    np.testing.assert_allclose(
        gate(outputs, states, training=False)[0], outputs[:, 0]
    )


def test_warmup_keeps_the_gate_still_in_fit():
    rng = np.random.default_rng(8)
    outputs = keras.Input((3, 2, 2, 3))
    states = keras.Input((3, 2, 2, 4))
    gate = GumbelTerminationGate(warmup_steps=2, seed=4)
    model = keras.Model([outputs, states], gate(outputs, states)[0])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = [
        rng.normal(size=(4, 3, 2, 2, 3)).astype("float32"),
        rng.normal(size=(4, 3, 2, 2, 4)).astype("float32"),
    ]
    y = rng.normal(size=(4, 2, 2, 3)).astype("float32")
    before = np.asarray(gate.gate_kernel).copy()
    model.fit(x, y, batch_size=2, verbose=0)
    np.testing.assert_array_equal(np.asarray(gate.gate_kernel), before)
    model.fit(x, y, batch_size=4, verbose=0)
    assert int(gate.step.numpy()) == 3
    assert not np.allclose(np.asarray(gate.gate_kernel), before)


def test_config_keeps_a_schedule():
    schedule = LinearAnnealTemperature(1.0, 0.1, 100)
    gate = GumbelTerminationGate(temperature=schedule, threshold=0.7)
    clone = GumbelTerminationGate.from_config(gate.get_config())
    assert clone.temperature_schedule == schedule
    assert clone.threshold == 0.7
    assert clone.get_config() == gate.get_config()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "half"}, "threshold"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"seed": 1.0}, "seed"),
        ({"initial_bias": float("nan")}, "initial_bias"),
        ({"initial_bias": "low"}, "initial_bias"),
        ({"initial_bias": True}, "initial_bias"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"warmup_steps": 2.5}, "warmup_steps"),
        ({"warmup_steps": True}, "warmup_steps"),
        ({"warmup_selection": "first"}, "warmup_selection"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GumbelTerminationGate(**kwargs)


def test_bad_ranks_raise():
    with pytest.raises(ValueError, match="step_states"):
        GumbelTerminationGate().build((2, 3, 2, 2, 4), (2, 3, 2, 4))
    with pytest.raises(ValueError, match="step_outputs"):
        GumbelTerminationGate().build((2, 3, 2, 4), (2, 3, 2, 2, 4))
