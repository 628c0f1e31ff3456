"""Checks that the shared layer checklist itself can fail."""

import keras
import numpy as np
import pytest

from tests.layer_checklist import run_layer_checklist


def test_checklist_passes_on_a_dense_layer():
    run_layer_checklist(
        lambda: keras.layers.Dense(3, kernel_initializer="ones"),
        np.arange(8, dtype="float32").reshape(2, 4) / 10,
        (2, 3),
    )


def test_checklist_catches_a_wrong_shape():
    with pytest.raises(AssertionError):
        run_layer_checklist(
            lambda: keras.layers.Dense(3),
            np.ones((2, 4), "float32"),
            (2, 4),
        )


def test_checklist_catches_unexpected_training_behaviour():
    with pytest.raises(AssertionError):
        run_layer_checklist(
            lambda: keras.layers.Dropout(0.5, seed=1),
            np.ones((2, 64), "float32"),
            (2, 64),
            training_changes_output=False,
        )
