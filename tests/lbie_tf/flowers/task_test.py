"""Tests of the flowers task's config checks."""

import ml_collections
import pytest

from experiments.configs import flowers
from lbie_tf.core import errors
from lbie_tf.flowers import task


@pytest.mark.parametrize(
    "field, value",
    [
        ("attention_form", "scaled_dot"),
        ("termination", "mixture"),
        ("batch_norm_mode", "frozen"),
    ],
)
def test_rejects_a_bad_model_choice(field, value):
    config = flowers.get_config()
    config.model[field] = value
    with pytest.raises(errors.UsageError, match=f"`model.{field}` must be one"):
        task.FlowersTask(config)


def test_a_config_from_before_the_attention_switch_is_additive():
    config = flowers.get_config().to_dict()
    del config["model"]["attention_form"]
    old = task.FlowersTask(ml_collections.ConfigDict(config))
    assert task._attention_form(old.config) == "additive"
