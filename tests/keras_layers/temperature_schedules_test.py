"""Tests that the temperature schedules give their documented values."""

import keras
import numpy as np
import pytest

from keras_layers.temperature_schedules import (
    ConstantTemperature,
    ExponentialTemperature,
    LinearAnnealTemperature,
    get_temperature_schedule,
)

STEPS = [0, 1, 5, 10, 25, 100, 1000]


def values(schedule):
    return np.array([float(schedule(step)) for step in STEPS])


def test_constant():
    np.testing.assert_allclose(values(ConstantTemperature(0.7)), 0.7)


def test_exponential_decays_continuously_to_the_floor():
    schedule = ExponentialTemperature(
        initial=2.0, decay_rate=0.5, decay_steps=10, minimum=0.1
    )
    want = [max(0.1, 2.0 * 0.5 ** (s / 10)) for s in STEPS]
    np.testing.assert_allclose(values(schedule), want, rtol=1e-6)
    # Spot values: halves every 10 steps, floor reached by step 100.
    assert float(schedule(10)) == pytest.approx(1.0)
    assert float(schedule(20)) == pytest.approx(0.5)
    assert float(schedule(100)) == pytest.approx(0.1)


def test_linear_anneal_reaches_and_keeps_the_final_value():
    schedule = LinearAnnealTemperature(initial=1.0, final=0.2, anneal_steps=20)
    want = [1.0 + (0.2 - 1.0) * min(s / 20, 1.0) for s in STEPS]
    np.testing.assert_allclose(values(schedule), want, rtol=1e-6)
    assert float(schedule(10)) == pytest.approx(0.6)
    assert float(schedule(20)) == pytest.approx(0.2)
    assert float(schedule(10**6)) == pytest.approx(0.2)


def test_schedules_accept_a_step_variable():
    step = keras.Variable(30, dtype="int64", trainable=False)
    schedule = ExponentialTemperature(1.0, 0.5, 10)
    assert float(schedule(step)) == pytest.approx(0.125)


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantTemperature(0.3),
        ExponentialTemperature(2.0, 0.9, 100, minimum=0.5),
        LinearAnnealTemperature(1.0, 0.1, 50),
    ],
)
def test_serialization_round_trip(schedule):
    config = keras.saving.serialize_keras_object(schedule)
    restored = keras.saving.deserialize_keras_object(config)
    assert restored == schedule
    assert get_temperature_schedule(config) == schedule
    short = {
        "class_name": type(schedule).__name__,
        "config": schedule.get_config(),
    }
    assert get_temperature_schedule(short) == schedule
    assert type(schedule).from_config(schedule.get_config()) == schedule
    np.testing.assert_allclose(values(restored), values(schedule))


def test_get_temperature_schedule_accepts_numbers_and_objects():
    assert get_temperature_schedule(2) == ConstantTemperature(2.0)
    assert get_temperature_schedule(0.5) == ConstantTemperature(0.5)
    schedule = LinearAnnealTemperature(1.0, 0.1, 50)
    assert get_temperature_schedule(schedule) is schedule


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: ConstantTemperature(0.0), "value"),
        (lambda: ConstantTemperature(-1.0), "value"),
        (lambda: ExponentialTemperature(0.0, 0.5, 10), "initial"),
        (lambda: ExponentialTemperature(1.0, 0.0, 10), "decay_rate"),
        (lambda: ExponentialTemperature(1.0, 0.5, 0), "decay_steps"),
        (lambda: ExponentialTemperature(1.0, 0.5, 10, -0.1), "minimum"),
        (lambda: LinearAnnealTemperature(1.0, 0.0, 10), "final"),
        (lambda: LinearAnnealTemperature(1.0, 0.1, 0), "anneal_steps"),
        (lambda: get_temperature_schedule(-1.0), "temperature"),
        (lambda: get_temperature_schedule("hot"), "temperature"),
        (lambda: get_temperature_schedule(True), "temperature"),
        (
            lambda: get_temperature_schedule({"class_name": "Nope"}),
            "temperature",
        ),
        (
            lambda: get_temperature_schedule(
                {"class_name": "Dense", "config": {"units": 2}}
            ),
            "temperature",
        ),
    ],
)
def test_bad_arguments_raise(make, name):
    with pytest.raises(ValueError, match=name):
        make()
