"""Tests of the ReferIt task: config checks, and a quick in-process train
and evaluation on the smoke config."""

import json

import pytest

from experiments.configs import referit, referit_smoke
from lbie_tf.core import errors, train_lib
from lbie_tf.referit import table3
from lbie_tf.referit import task as referit_task


def test_a_task_without_config_needs_no_data():
    task = referit_task.ReferitTask()
    assert task.name == "referit" and task.config is None


@pytest.mark.parametrize("model", ["lbie", "hu", "text_blind"])
def test_real_configs_are_accepted(model):
    task = referit_task.ReferitTask(referit.get_config(model))
    assert task.describe_run()["model"] == model


def test_an_unknown_model_field_is_named():
    config = referit.get_config("hu")
    config.model.num_steps = 3
    with pytest.raises(errors.UsageError, match="model.num_steps"):
        referit_task.ReferitTask(config)


def test_an_unknown_model_name_is_refused():
    config = referit.get_config("lbie")
    config.model.name = "fcn"
    with pytest.raises(errors.UsageError, match="model.name"):
        referit_task.ReferitTask(config)


def test_the_given_config_is_not_changed():
    config = referit.get_config("lbie")
    before = config.to_dict()
    referit_task.ReferitTask(config)
    assert config.to_dict() == before


def test_describe_run_quotes_table3():
    assert (
        referit_task.ReferitTask(referit.get_config("hu")).describe_run()[
            "paper_overall_iou"
        ]
        == table3.TABLE3["hu"]["overall_iou"]
        == 0.4803
    )
    blind = referit_task.ReferitTask(referit.get_config("text_blind"))
    assert blind.describe_run()["paper_overall_iou"] is None


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lbie", "hu"])
def test_smoke_config_trains_and_evaluates(model, tmp_path):
    config = referit_smoke.get_config(model)
    config.data.data_dir = str(tmp_path / "data")
    results = train_lib.train_and_evaluate(config, tmp_path / "run")
    written = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert written["task"] == "referit" and written["model"] == model
    assert results["num_examples"] == results["num_pairs"] > 0
    for key in ["overall_iou", "mean_iou", "precision@0.5", "precision@0.9"]:
        assert 0.0 <= results[key] <= 1.0
    assert (tmp_path / "run" / "model.keras").is_file()
    assert list((tmp_path / "run" / "tensorboard" / "test").iterdir())


def test_optimizer_choice():
    config = referit_smoke.get_config("hu")
    config.train.optimizer = "adam"
    optimizer = referit_task.ReferitTask(config).build_optimizer(10)
    assert type(optimizer).__name__ == "Adam"
    config.train.optimizer = "rmsprop"
    with pytest.raises(errors.UsageError, match="train.optimizer"):
        referit_task.ReferitTask(config).build_optimizer(10)
