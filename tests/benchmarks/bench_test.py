"""Tests of benchmarks.bench: a --quick run's JSON, the README table."""

import json
import subprocess
import sys

import pytest

from benchmarks import bench, bench_models, readme_table


def _positive_numbers(node, path=""):
    """Every int or float under `node` (bools and known signed fields
    aside), with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _positive_numbers(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _positive_numbers(value, f"{path}/{index}")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


@pytest.mark.slow
@pytest.mark.multiprocess
def test_quick_run_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench",
            "--quick",
            "--models=cosal/smoke",
            "--jobs=2",
            f"--data_dir={tmp_path / 'data'}",
            f"--out={out}",
        ],
        cwd=bench_models.ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["quick"] is True
    for key in ("cpu_model", "cpu_count", "tensorflow", "keras"):
        assert data["machine"][key]
    assert [r["returncode"] for r in data["workers"]] == [0, 0]
    # The oneDNN setting took: TensorFlow's notice only where it is on.
    assert [r["onednn_notice_seen"] for r in data["workers"]] == [True, False]

    entry = data["models"]["cosal/smoke"]
    assert set(entry["variants"]) == {"onednn_on", "onednn_off"}
    assert entry["forward_gflop_per_image"] > 0
    assert entry["flops_uncounted"] == {}
    assert set(entry["onednn_on_over_off"]) == {"xla_off", "xla_on"}
    for variant in entry["variants"].values():
        assert "errors" not in variant
        assert "oneDNN" in variant["machine"]
        for xla in ("xla_off", "xla_on"):
            train = variant[f"train_{xla}"]
            for field in (
                "images_per_s",
                "achieved_gflop_per_s",
                "matmul_share",
                "conv3x3_share",
            ):
                assert train[field] > 0
        assert variant["xla_on_over_off"] > 0
        for part in ("keras", "saved_model"):
            assert variant[part]["batch1_median_ms"] > 0
            assert variant[part]["batch1_p95_ms"] > 0
            assert variant[part]["throughput_batch"] == 64
            assert variant[part]["throughput_images_per_s"] > 0
        assert variant["pipeline"]["images_per_s"] > 0
        assert variant["peak_rss_mb"] >= variant["ru_maxrss_mb"] > 0
        assert variant["roofline_gflop_per_s"]["matmul"] > 0
    signed = ("first_loss", "last_loss", "relative_difference", "load_")
    for path, value in _positive_numbers(entry):
        if not any(s in path for s in signed):
            assert value > 0, path
    assert data["input_pipeline"]["cosal"]["multiple_of_fastest_model"] > 0
    assert {t["name"] for t in data["targets"]} == {
        t["name"] for t in bench_models.TARGETS
    }
    for target in data["targets"]:
        assert target["status"] == "not measured"  # no such model here

    readme = tmp_path / "README.md"
    readme.write_text(
        f"intro\n{readme_table.START}\nold\n{readme_table.END}\nrest\n"
    )
    assert readme_table.main([f"--bench={out}", f"--readme={readme}"]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n")
    assert "| cosal/smoke | 8 |" in text and "old" not in text


def test_readme_table_needs_both_markers(tmp_path, capsys):
    bench_file = tmp_path / "bench.json"
    bench_file.write_text("{}")
    readme = tmp_path / "README.md"
    readme.write_text(f"no end marker\n{readme_table.START}\n")
    assert readme_table.main([f"--bench={bench_file}", f"--readme={readme}"])
    assert "once each" in capsys.readouterr().err
    assert readme.read_text() == f"no end marker\n{readme_table.START}\n"


def test_every_default_model_is_in_the_table_of_a_task():
    keys = [spec.key for spec in bench_models.MODELS]
    assert len(keys) == len(set(keys))
    for spec in bench_models.MODELS:
        assert set(spec.parts) <= set(bench_models.PARTS)
        assert spec.task in ("cosal", "referit", "flowers")
    for target in bench_models.TARGETS:
        bench_models.find(target["model"])


def test_a_row_of_an_unregistered_task_is_skipped(monkeypatch):
    monkeypatch.setattr(bench, "registered_tasks", lambda: ["cosal"])
    specs, skipped = bench.select_models(["cosal/smoke", "referit/lbie"])
    assert [s.key for s in specs] == ["cosal/smoke"]
    assert skipped == {"referit/lbie": "task 'referit' is not registered"}


def test_time_to_iou_sums_epochs_until_the_paper_is_reached(tmp_path):
    log = tmp_path / "table2.log"
    log.write_text(
        "=== Table 2 cell other ===\n"
        "10/10 - 5s - 1ms/step - loss: 1\n"
        "=== Table 2 cell original_t4_attn_d8 ===\n"
        "10/10 - 20s - 1ms/step - loss: 3\n"
        "epoch 2: test iou_shapes 0.5000 (paper 0.7017), miou 0.3\n"
        "10/10 - 30s - 1ms/step - loss: 2\n"
        "10/10 - 25s - 1ms/step - loss: 1\n"
        "epoch 4: test iou_shapes 0.7100 (paper 0.7017), miou 0.6\n"
        "10/10 - 40s - 1ms/step - loss: 1\n"
    )
    reached = bench._original_log_time_to_iou(str(log), "original_t4_attn_d8")
    assert reached == {
        "wall_s": 115.0,
        "epoch": 4,
        "iou_shapes": 0.71,
        "paper_iou": 0.7017,
    }
