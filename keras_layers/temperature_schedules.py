"""Gumbel-softmax temperature schedules for the termination gate (paper §3)."""

import keras
from keras import ops


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{name}` must be a positive number. Received: {name}={value!r}"
        )
    if not value > 0:
        raise ValueError(
            f"`{name}` must be a positive number. Received: {name}={value}"
        )


def _as_float_step(step):
    return ops.cast(ops.convert_to_tensor(step), "float32")


class TemperatureSchedule:
    """Base class: maps a training step to a Gumbel-softmax temperature.

    The paper (section 3, "Loss and training") anneals the temperature lambda
    "via a fixed schedule" without giving it; these schedules are the options
    the port offers. Subclasses implement `__call__(step)`, returning a float32
    scalar tensor, and `get_config()`.
    """

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and (
            self.get_config() == other.get_config()
        )

    def __repr__(self):
        arguments = ", ".join(
            f"{k}={v!r}" for k, v in self.get_config().items()
        )
        return f"{self.__class__.__name__}({arguments})"


@keras.saving.register_keras_serializable(package="lbie")
class ConstantTemperature(TemperatureSchedule):
    """A fixed temperature: lambda(step) = value.

    Args:
      value: the temperature, > 0.
    """

    def __init__(self, value=1.0):
        _check_positive("value", value)
        self.value = float(value)

    def __call__(self, step):
        del step
        return ops.convert_to_tensor(self.value, dtype="float32")

    def get_config(self):
        return {"value": self.value}


@keras.saving.register_keras_serializable(package="lbie")
class ExponentialTemperature(TemperatureSchedule):
    """Exponential decay to a floor.

    lambda(step) = max(minimum, initial * decay_rate ** (step / decay_steps)),
    continuous in `step` (no staircase), as in Jang et al. 2017 whose
    Gumbel-softmax the paper uses.

    Args:
      initial: temperature at step 0, > 0.
      decay_rate: factor applied every `decay_steps` steps, > 0.
      decay_steps: number of steps over which the factor applies, > 0.
      minimum: floor of the temperature, >= 0.
    """

    def __init__(self, initial, decay_rate, decay_steps, minimum=0.0):
        _check_positive("initial", initial)
        _check_positive("decay_rate", decay_rate)
        _check_positive("decay_steps", decay_steps)
        if isinstance(minimum, bool) or not isinstance(minimum, (int, float)):
            raise ValueError(
                "`minimum` must be a number >= 0. "
                f"Received: minimum={minimum!r}"
            )
        if minimum < 0:
            raise ValueError(
                f"`minimum` must be a number >= 0. Received: minimum={minimum}"
            )
        self.initial = float(initial)
        self.decay_rate = float(decay_rate)
        self.decay_steps = float(decay_steps)
        self.minimum = float(minimum)

    def __call__(self, step):
        exponent = _as_float_step(step) / self.decay_steps
        value = self.initial * ops.power(
            ops.convert_to_tensor(self.decay_rate, "float32"), exponent
        )
        return ops.maximum(value, self.minimum)

    def get_config(self):
        return {
            "initial": self.initial,
            "decay_rate": self.decay_rate,
            "decay_steps": self.decay_steps,
            "minimum": self.minimum,
        }


@keras.saving.register_keras_serializable(package="lbie")
class LinearAnnealTemperature(TemperatureSchedule):
    """Linear anneal from `initial` to `final`, then constant at `final`.

    lambda(step) = initial + (final - initial) * min(step / anneal_steps, 1).

    Args:
      initial: temperature at step 0, > 0.
      final: temperature from step `anneal_steps` on, > 0.
      anneal_steps: length of the anneal in steps, > 0.
    """

    def __init__(self, initial, final, anneal_steps):
        _check_positive("initial", initial)
        _check_positive("final", final)
        _check_positive("anneal_steps", anneal_steps)
        self.initial = float(initial)
        self.final = float(final)
        self.anneal_steps = float(anneal_steps)

    def __call__(self, step):
        progress = ops.minimum(_as_float_step(step) / self.anneal_steps, 1.0)
        progress = ops.maximum(progress, 0.0)
        return self.initial + (self.final - self.initial) * progress

    def get_config(self):
        return {
            "initial": self.initial,
            "final": self.final,
            "anneal_steps": self.anneal_steps,
        }


_SCHEDULES = {
    cls.__name__: cls
    for cls in (
        ConstantTemperature,
        ExponentialTemperature,
        LinearAnnealTemperature,
    )
}


def get_temperature_schedule(identifier):
    """Returns a schedule from a number, a config dict or a schedule object.

    Args:
      identifier: a positive float or int (a `ConstantTemperature`); a dict,
        either as written by `keras.saving.serialize_keras_object` or of the
        form `{"class_name": "ExponentialTemperature", "config": {...}}`; or a
        `TemperatureSchedule` (returned as is).

    Raises:
      ValueError: if `identifier` is none of these.
    """
    if isinstance(identifier, TemperatureSchedule):
        return identifier
    if isinstance(identifier, (int, float)) and not isinstance(
        identifier, bool
    ):
        _check_positive("temperature", identifier)
        return ConstantTemperature(identifier)
    if isinstance(identifier, dict):
        class_name = identifier.get("class_name")
        if class_name in _SCHEDULES and set(identifier) <= {
            "class_name",
            "config",
        }:
            return _SCHEDULES[class_name].from_config(
                dict(identifier.get("config", {}))
            )
        try:
            schedule = keras.saving.deserialize_keras_object(identifier)
        except (TypeError, ValueError):
            schedule = None
        if isinstance(schedule, TemperatureSchedule):
            return schedule
    raise ValueError(
        "`temperature` must be a positive number, a temperature schedule "
        f"config dict (class_name one of {sorted(_SCHEDULES)}) or a "
        f"TemperatureSchedule. Received: temperature={identifier!r}"
    )


def serialize_temperature(temperature):
    """The config form of a `temperature` argument (inverse of
    `get_temperature_schedule`): schedules as Keras configs, numbers as is."""
    if isinstance(temperature, TemperatureSchedule):
        return keras.saving.serialize_keras_object(temperature)
    return temperature
