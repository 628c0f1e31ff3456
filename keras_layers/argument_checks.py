"""Checks of layer constructor arguments shared by several layers."""

import numpy as np


def check_positive_int(name, value):
    """Raises ValueError naming `name` unless `value` is an int >= 1."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < 1
    ):
        raise ValueError(
            f"`{name}` must be a positive integer; received {name}={value!r}."
        )
