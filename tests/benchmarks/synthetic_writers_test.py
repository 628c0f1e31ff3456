"""Tests of the synthetic-writer benchmark on a few images (no timing)."""

import json

from benchmarks import synthetic_writers


def test_small_run_counts_what_each_writer_wrote(tmp_path, capsys):
    out = tmp_path / "writers.json"
    argv = [
        "--referit_train_images=3",
        "--referit_test_images=2",
        "--flowers_classes=4",
        "--flowers_images_per_class=2",
        f"--out={out}",
    ]
    assert synthetic_writers.main(argv) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    # ReferIt: 3 train + max(1, 3 // 10) val + 2 test.
    assert result["referit"]["images"] == 6
    assert result["referit"]["splits"]["trainval"]["images"] == 4
    assert result["flowers"]["images"] == 8
    for writer in ("referit", "flowers"):
        figures = result[writer]
        assert figures["wall_s"] > 0 and figures["mib_on_disk"] >= 0
        assert figures["images_per_s"] > 0


def test_a_bad_count_is_one_line(capsys):
    argv = ["--referit_train_images=1", "--referit_test_images=1"]
    assert synthetic_writers.main(argv + ["--flowers_classes=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "num_classes" in err
    assert "\n" not in err
