"""Tests of the CoSaL preview CLI and the build benchmark's smoke run."""

import numpy as np
import pytest
from PIL import Image

from benchmarks import cosal_build
from data_builders.cosal import generator, preview
from data_builders.cosal.cosal_dataset_builder import make_config


def test_preview_cli_draws_the_stored_examples(tmp_path, capsys):
    out = tmp_path / "sub" / "samples.png"
    preview.main(
        [
            "--config=direct_4_small",
            f"--out={out}",
            "--num_examples=4",
            "--scale=2",
        ]
    )
    assert "Wrote" in capsys.readouterr().out
    sheet = np.asarray(Image.open(out).convert("RGB"))
    config = make_config("direct_4_small")
    size = 2 * config.image_size
    first = generator.generate_example(
        generator.example_rng(config.seed, "test", 0), num_direct=4
    )
    # The first panel's silhouette and target, shrunk back by the scale.
    top = 2 * preview._LINE_HEIGHT + preview._MARGIN
    left = preview._MARGIN
    silhouette = sheet[top : top + size : 2, left : left + size : 2]
    np.testing.assert_array_equal(silhouette, first["image"])
    left += size + preview._MARGIN
    target = sheet[top : top + size : 2, left : left + size : 2]
    np.testing.assert_array_equal(target, first["target"])


def test_preview_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        preview.main(["--config=direct_5", f"--out={tmp_path / 'x.png'}"])
    with pytest.raises(SystemExit):
        preview.main(["--num_examples=0", f"--out={tmp_path / 'x.png'}"])
    assert list(tmp_path.iterdir()) == []


def test_benchmark_reports_a_tiny_build(tmp_path):
    config = make_config("direct_4_small", train_size=4, test_size=2)
    result = cosal_build.run_benchmark(config, 10, str(tmp_path))
    assert result["num_examples"] == 6
    assert result["generation_examples_per_s"] > 0
    assert result["build_wall_s"] >= 0
    assert result["peak_rss_mb"] >= result["rss_mb_before_generation"] > 0
    assert result["dataset_bytes_on_disk"] > 0
