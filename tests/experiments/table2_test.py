"""Tests of the Table 2 cells, configs and the results writer."""

import json
import os
import subprocess
import sys

import pytest

from experiments.configs import cosal
from lbie_tf.cosal import table2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
ROW_KEYS = {
    "family",
    "T",
    "attention",
    "num_direct",
    "paper_iou",
    "iou_shapes",
    "miou_colors",
    "text_sensitivity",
    "train_images",
    "epochs",
    "wall_s",
    "command",
}


def test_eighteen_cells_each_with_a_config_and_the_paper_number():
    cells = table2.all_cells()
    assert len(cells) == len(set(cells)) == 18
    numbers = set()
    for name in cells:
        config = cosal.get_config(name)
        family, steps, attention, direct = table2.parse_cell_name(name)
        assert config.model.family == family
        assert config.model.num_steps == steps
        assert config.model.attention == attention
        assert config.data.name == f"direct_{direct}"
        assert (
            config.paper_iou == table2.PAPER_TABLE2[(steps, attention, direct)]
        )
        numbers.add(config.paper_iou)
    assert numbers == set(table2.PAPER_TABLE2.values())
    assert cosal.get_config("paper_t4_attn_d4").paper_iou == 0.5033
    assert cosal.get_config("original_t1_noattn_d8").paper_iou == 0.3186


@pytest.mark.parametrize(
    "bad",
    ["paper_t4_d8", "vgg_t1_attn_d4", "paper_t4_noattn_d4", "paper_t0_attn_d4"],
)
def test_bad_cell_names_raise(bad):
    with pytest.raises(ValueError, match="Config argument"):
        cosal.get_config(bad)


def _row(family, steps, attention, direct, iou):
    results = {
        "family": family,
        "T": steps,
        "attention": attention,
        "num_direct": direct,
        "paper_iou": table2.paper_iou(steps, attention, direct),
        "iou_shapes": iou,
        "miou_colors": iou / 2,
        "text_sensitivity": iou / 4,
        "train_images": 100,
        "epochs": 2,
        "wall_s": 12.5,
        "num_examples": 500,
    }
    return table2.make_row(results, f"cmd {family} {steps}")


def test_results_have_the_issue_keys_plus_text_sensitivity_and_merge(tmp_path):
    first = [_row("paper", 4, True, 8, 0.5), _row("original", 1, False, 4, 0.2)]
    table2.write_results(first, str(tmp_path), {"paper_t4_attn_d8": "x"})
    table2.write_results([_row("paper", 4, True, 8, 0.75)], str(tmp_path))
    rows = json.loads((tmp_path / "table2.json").read_text())
    assert [set(row) for row in rows] == [ROW_KEYS, ROW_KEYS]
    assert [(r["family"], r["iou_shapes"]) for r in rows] == [
        ("paper", 0.75),
        ("original", 0.2),
    ]
    markdown = (tmp_path / "table2.md").read_text()
    assert "| paper | 4 | yes | 8 | 0.7017 | 0.7500 | 0.3750 | 0.188 |" in (
        markdown
    )
    assert "| original | 1 | no | 4 | 0.2107 | 0.2000 | 0.1000 | 0.050 |" in (
        markdown
    )
    assert "`cmd paper 4`" in markdown


def test_table2_cli_rejects_bad_cells():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(
        [sys.executable, "-m", "experiments.table2", "--cells=paper_t9_d1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "paper_t9_d1" in run.stderr


def test_overrides_apply_to_any_cell_and_name_unknown_fields():
    from experiments import cli
    from lbie_tf.core import errors

    config = cosal.get_config("paper_t1_attn_d4")
    cli.apply_overrides(
        config,
        {
            "train.epochs": 3,
            "data.overrides.train_size": 200,
            "data.overrides.reproduce_coverage_bug": True,
        },
    )
    assert config.train.epochs == 3
    assert config.data.overrides.train_size == 200
    assert config.data.overrides.reproduce_coverage_bug is True
    with pytest.raises(errors.UsageError, match="model.decoder"):
        cli.apply_overrides(config, {"model.decoder": "deconv"})


def test_settings_name_the_length_and_the_gate_warmup():
    from experiments.table2 import cell_settings

    config = cosal.get_config("paper_t4_attn_d4")
    text = cell_settings("paper_t4_attn_d4", config)
    assert "24 epochs" in text
    assert "gate warm-up 0.33 of training (uniform)" in text
    config.train.epochs = 5
    config.model.termination_warmup = 0.0
    text = cell_settings("paper_t4_attn_d4", config)
    assert "REDUCED from the default 24" in text and "warm-up" not in text
    assert "warm-up" not in cell_settings(
        "paper_t1_attn_d4", cosal.get_config("paper_t1_attn_d4")
    )


def test_settings_name_the_original_familys_decoder():
    from experiments.table2 import cell_settings

    config = cosal.get_config("original_t1_attn_d8")
    assert "decoder classifier_upsampling" in cell_settings(
        "original_t1_attn_d8", config
    )
    config.model.decoder = "deconv"
    assert "decoder deconv" in cell_settings("original_t1_attn_d8", config)
    assert "decoder" not in cell_settings(
        "paper_t1_attn_d8", cosal.get_config("paper_t1_attn_d8")
    )


def test_an_interrupted_run_keeps_the_settings_of_cells_it_did_not_run(
    tmp_path, monkeypatch
):
    from lbie_tf.core import train_lib

    old = [_row("paper", 4, True, 8, 0.5), _row("paper", 4, True, 6, 0.4)]
    table2.write_results(
        old,
        str(tmp_path),
        {"paper_t4_attn_d8": "old d8", "paper_t4_attn_d6": "old d6"},
    )
    runs = []

    def train_and_evaluate(config, workdir):
        # The first cell finishes; the run stops during the second.
        if runs:
            raise KeyboardInterrupt
        runs.append(workdir)
        return dict(_row("paper", 4, True, 8, 0.75), wall_s=1.0)

    monkeypatch.setattr(train_lib, "train_and_evaluate", train_and_evaluate)
    names = ["paper_t4_attn_d8", "paper_t4_attn_d6"]
    with pytest.raises(KeyboardInterrupt):
        table2.run_cells(
            {name: None for name in names},
            str(tmp_path / "runs"),
            {name: f"cmd {name}" for name in names},
            str(tmp_path),
            {name: f"new {name[-2:]}" for name in names},
        )
    markdown = (tmp_path / "table2.md").read_text()
    assert "| 0.7500 |" in markdown and "new d8" in markdown
    assert "old d6" in markdown and "new d6" not in markdown
