"""Tests of the shared constructor-argument checks."""

import pytest

from keras_layers import argument_checks


def test_check_choice_accepts_a_choice_and_names_a_bad_value():
    argument_checks.check_choice("mode", "b", ("a", "b"))
    with pytest.raises(
        ValueError,
        match=r"^`mode` must be one of \('a', 'b'\); received mode='c'\.$",
    ):
        argument_checks.check_choice("mode", "c", ("a", "b"))


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "1"])
def test_check_positive_int_refuses_what_is_not_a_positive_int(value):
    with pytest.raises(ValueError, match="`units` must be a positive integer"):
        argument_checks.check_positive_int("units", value)
