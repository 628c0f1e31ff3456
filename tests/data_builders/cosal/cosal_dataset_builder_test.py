"""Tests of the cosal TFDS builder: tfds' own checks, contract, failures."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import data_builders.cosal  # noqa: F401  (registers "cosal")
from data_builders.cosal import cosal_dataset_builder, generator
from data_builders.cosal.cosal_dataset_builder import (
    Builder,
    CosalConfig,
    make_config,
)

TINY = make_config("direct_4_small", train_size=6, test_size=3)


class CosalBuilderTest(tfds.testing.DatasetBuilderTestCase):
    """tfds' declarative builder test on a 6 / 3 example config."""

    DATASET_CLASS = Builder
    BUILDER_CONFIG_NAMES_TO_TEST = [TINY]
    SPLITS = {"train": 6, "test": 3}
    SKIP_CHECKSUMS = True  # Nothing is downloaded.


# Other code relies on exactly these names, dtypes and shapes (issue 3).
CONTRACT = {
    "image": (tf.uint8, (48, 48, 3)),
    "target": (tf.uint8, (48, 48, 3)),
    "color_labels": (tf.uint8, (48, 48)),
    "shape_labels": (tf.uint8, (48, 48)),
    "sentences": (tf.int32, (9, 3)),
    "sentence_text": (tf.string, (9,)),
    "is_direct": (tf.bool, (9,)),
    "cell_shapes": (tf.int32, (9,)),
    "cell_colors": (tf.int32, (9,)),
}


def test_registered_configs_and_feature_contract(tmp_path):
    sizes = {}
    for name in ("direct_4", "direct_6", "direct_8"):
        for suffix, counts in (("", (50_000, 10_000)), ("_small", (2000, 500))):
            builder = tfds.builder(f"cosal/{name}{suffix}", data_dir=tmp_path)
            config = builder.builder_config
            sizes[name + suffix] = (config.train_size, config.test_size)
            assert config.num_direct == int(name[-1])
            assert (config.num_colors, config.image_size) == (6, 48)
            assert not config.reproduce_coverage_bug
            assert sizes[name + suffix] == counts
    spec = builder.info.features.get_tensor_info()
    assert {k: (v.dtype, v.shape) for k, v in spec.items()} == CONTRACT
    assert list(tmp_path.iterdir()) == []  # Looking up writes nothing.


def _load(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split)))


def test_custom_config_builds_what_the_generator_draws(tmp_path):
    config = CosalConfig(
        name="custom_test",
        num_direct=5,
        num_colors=3,
        image_size=96,
        train_size=3,
        test_size=2,
        seed=9,
        reproduce_coverage_bug=True,
    )
    builder = Builder(config=config, data_dir=tmp_path)
    builder.download_and_prepare()
    test = _load(builder, "test")
    assert len(test) == 2 and len(_load(builder, "train")) == 3
    assert test[0]["image"].shape == (96, 96, 3)
    # Stored in index order, equal to a fresh draw of the same example.
    for index, stored in enumerate(test):
        expected = generator.generate_example(
            generator.example_rng(9, "test", index),
            num_direct=5,
            num_colors=3,
            image_size=96,
            reproduce_coverage_bug=True,
        )
        for key, value in expected.items():
            if key == "sentence_text":
                value = [s.encode() for s in value]
            np.testing.assert_array_equal(stored[key], value, err_msg=key)
        assert stored["cell_colors"].max() < 3


def test_make_config_names_custom_configs_by_their_parameters():
    assert make_config("direct_6") is Builder.builder_configs["direct_6"]
    config = make_config("direct_6_small", num_colors=3, seed=2)
    assert (config.num_direct, config.num_colors, config.seed) == (6, 3, 2)
    assert config.train_size == 2000
    assert config.name == "d6_c3_s48_train2000_test500_seed2"
    bug = make_config(reproduce_coverage_bug=True)
    assert bug.name.endswith("_bug") and bug.num_direct == 4
    with pytest.raises(ValueError, match="name.*direct_5"):
        make_config("direct_5")
    with pytest.raises(ValueError, match="num_colours"):
        make_config(num_colours=3)


@pytest.mark.parametrize(
    "overrides, argument",
    [
        (dict(num_direct=0), "num_direct"),
        (dict(num_direct=10), "num_direct"),
        (dict(image_size=64), "image_size"),
        (dict(num_colors=1), "num_colors"),
        (dict(num_colors=7), "num_colors"),
        (dict(train_size=0), "train_size"),
        (dict(seed=-1), "seed"),
        (dict(reproduce_coverage_bug="yes"), "reproduce_coverage_bug"),
    ],
)
def test_bad_config_raises_before_anything_is_written(
    tmp_path, overrides, argument
):
    value = str(list(overrides.values())[0])
    with pytest.raises(ValueError, match=f"{argument}.*{value}"):
        CosalConfig(name="bad", **overrides)
    with pytest.raises(ValueError, match=f"{argument}.*{value}"):
        make_config("direct_4_small", **overrides)
    with pytest.raises(ValueError, match=f"{argument}.*{value}"):
        tfds.builder(
            "cosal",
            data_dir=tmp_path,
            config=CosalConfig(name="bad", **overrides),
        )
    assert list(tmp_path.iterdir()) == []


def test_interrupted_build_leaves_nothing_loadable(tmp_path, monkeypatch):
    config = make_config("direct_4_small", train_size=5, test_size=2, seed=4)
    real_generate_split = generator.generate_split

    def failing_generate_split(*args, **kwargs):
        for count, item in enumerate(real_generate_split(*args, **kwargs)):
            if count == 3:
                raise RuntimeError("interrupted")
            yield item

    monkeypatch.setattr(
        cosal_dataset_builder.generator,
        "generate_split",
        failing_generate_split,
    )
    with pytest.raises(RuntimeError, match="interrupted"):
        Builder(config=config, data_dir=tmp_path).download_and_prepare()
    monkeypatch.undo()

    reloaded = Builder(config=config, data_dir=tmp_path)
    assert not reloaded.is_prepared()
    with pytest.raises(AssertionError, match="download_and_prepare"):
        reloaded.as_dataset(split="train")
    # tfds keeps only its note of the builder's default config (.config/);
    # no file of the dataset, complete or partial, is left.
    dataset_dir = tmp_path / "cosal" / config.name
    leftovers = [p for p in dataset_dir.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers

    reloaded.download_and_prepare()
    again = Builder(config=config, data_dir=tmp_path)
    assert again.is_prepared()
    assert len(_load(again, "train")) == 5
    assert len(_load(again, "test")) == 2
