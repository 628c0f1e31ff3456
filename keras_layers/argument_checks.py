"""Checks of layer constructor arguments shared by several layers."""

import numpy as np


def _check_int_at_least(name, value, minimum, description):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        raise ValueError(
            f"`{name}` must be a {description}; received {name}={value!r}."
        )


def check_positive_int(name, value):
    """Raises ValueError naming `name` unless `value` is an int >= 1."""
    _check_int_at_least(name, value, 1, "positive integer")


def check_non_negative_int(name, value):
    """Raises ValueError naming `name` unless `value` is an int >= 0."""
    _check_int_at_least(name, value, 0, "non-negative integer")


def check_choice(name, value, choices):
    """Raises ValueError naming `name` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}; received "
            f"{name}={value!r}."
        )
