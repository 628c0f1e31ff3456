"""Tests of the CoSaL input pipeline (parser, batching, builder reading)."""

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from data_builders.cosal import generator
from lbie_tf.cosal import input_pipeline


def _examples(num, num_direct=8):
    examples = [
        example
        for _, example in generator.generate_split("train", num, 0, num_direct)
    ]
    keys = ("image", "sentences", "color_labels", "shape_labels")
    return tf.data.Dataset.from_tensor_slices(
        {k: np.stack([e[k] for e in examples]) for k in keys}
    ), examples


def test_pipeline_batches_inputs_and_targets_with_contract_dtypes():
    dataset, examples = _examples(10)
    batches = list(input_pipeline.build_pipeline(dataset, 4, training=False))
    assert [len(b[0]["image"]) for b in batches] == [4, 4, 2]
    inputs, targets = batches[0]
    assert inputs["image"].dtype == tf.uint8
    assert inputs["image"].shape == (4, 48, 48, 3)
    assert inputs["sentences"].dtype == tf.int32
    assert inputs["sentences"].shape == (4, 9, 3)
    assert set(targets) == {"color_labels", "shape_labels"}
    np.testing.assert_array_equal(
        targets["color_labels"][1], examples[1]["color_labels"]
    )
    np.testing.assert_array_equal(
        inputs["sentences"][3], examples[3]["sentences"]
    )


def test_training_pipeline_shuffles_every_epoch_and_drops_remainder():
    dataset, examples = _examples(12)
    pipeline = input_pipeline.build_pipeline(
        dataset, 5, training=True, shuffle_buffer=12, seed=1
    )
    epochs = [
        np.concatenate([b[0]["sentences"].numpy() for b in pipeline])
        for _ in range(2)
    ]
    assert all(len(e) == 10 for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1])
    original = {e["sentences"].tobytes() for e in examples}
    assert {s.tobytes() for s in epochs[0]} <= original


def test_model_targets_and_split_names():
    dataset, _ = _examples(3)
    pipeline = input_pipeline.with_model_targets(
        input_pipeline.build_pipeline(dataset, 3, training=False), "logits"
    )
    _, targets = next(iter(pipeline))
    assert list(targets) == ["logits"]
    assert input_pipeline.split_name("train", 100) == "train[:100]"
    assert input_pipeline.split_name("test") == "test"
    with pytest.raises(ValueError, match="batch_size"):
        input_pipeline.build_pipeline(dataset, 0, training=False)


def test_reads_a_tiny_custom_builder(tmp_path):
    data_config = ml_collections.ConfigDict(
        {
            "name": "direct_6_small",
            "data_dir": str(tmp_path),
            "overrides": {"train_size": 6, "test_size": 3},
        }
    )
    builder = input_pipeline.prepare(input_pipeline.get_builder(data_config))
    assert input_pipeline.num_split_examples(builder, "train", 4) == 4
    assert input_pipeline.num_split_examples(builder, "test") == 3
    train = input_pipeline.make_dataset(
        builder, "train", 2, training=True, num_examples=4
    )
    assert sum(len(b[0]["image"]) for b in train) == 4
    test = list(input_pipeline.make_dataset(builder, "test", 2, training=False))
    assert sum(len(b[0]["image"]) for b in test) == 3
    _, example = next(iter(generator.generate_split("test", 1, 0, 6)))
    np.testing.assert_array_equal(
        test[0][0]["sentences"][0], example["sentences"]
    )
