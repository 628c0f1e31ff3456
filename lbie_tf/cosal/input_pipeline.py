"""The CoSaL input pipeline: tfds builder -> parsed, cached, batched tf.data."""

import functools
import os

import tensorflow as tf
import tensorflow_datasets as tfds

import data_builders.cosal as cosal_data

# The builder's label maps are uint8; they stay uint8 through the cache so
# that a cached 50,000-example split holds 11.5 KB per example.
INPUT_KEYS = ("image", "sentences")
TARGET_KEYS = ("color_labels", "shape_labels")


def builder_config(data_config):
    """The CosalConfig that `data_config` names.

    Args:
      data_config: the `data` ConfigDict: `name` (a registered builder config
        such as "direct_8_small") and `overrides` (CosalConfig fields such as
        train_size for a custom config; None values keep the registered
        config's value).
    """
    overrides = {
        key: value
        for key, value in dict(data_config.overrides).items()
        if value is not None
    }
    return cosal_data.make_config(data_config.name, **overrides)


def get_builder(data_config):
    """Returns the CoSaL tfds builder of `data_config` (see builder_config).

    `data_config.data_dir` is where tfds stores the generated files.
    """
    data_dir = os.path.expanduser(data_config.data_dir)
    return cosal_data.Builder(
        config=builder_config(data_config), data_dir=data_dir
    )


def prepare(builder):
    """Generates the dataset files if they are missing (tfds shows progress)."""
    builder.download_and_prepare()
    return builder


def parse_example(example):
    """Parser: a decoded tfds example -> (model inputs, targets).

    Models see only these tensors, never the file format: image uint8
    (H, W, 3), sentences int32 (9, 3); targets colour and shape labels uint8
    (H, W).
    """
    inputs = {
        "image": example["image"],
        "sentences": tf.cast(example["sentences"], tf.int32),
    }
    targets = {key: example[key] for key in TARGET_KEYS}
    return inputs, targets


def _decoded_keys():
    return {key: True for key in INPUT_KEYS + TARGET_KEYS}


def split_name(split, num_examples=None):
    """`train` or `train[:n]` for a subset of the first n examples."""
    if num_examples is None or num_examples < 0:
        return split
    return f"{split}[:{int(num_examples)}]"


def build_pipeline(
    examples,
    batch_size,
    training,
    shuffle_buffer=10_000,
    seed=0,
    cache=True,
    repeat=False,
):
    """Parser + cache + shuffle + batch + prefetch over decoded examples.

    Args:
      examples: a tf.data.Dataset of decoded example dicts (the builder's
        features; only image, sentences, color_labels, shape_labels are
        read).
      batch_size: examples per batch.
      training: shuffle (reshuffled every epoch) and drop the last partial
        batch; evaluation keeps every example.
      shuffle_buffer: shuffle buffer size (the whole split is cached, so a
        buffer as large as the split shuffles it fully).
      seed: shuffle seed.
      cache: cache the parsed examples in memory after the first epoch.
      repeat: repeat forever (for step-based training).

    Returns:
      A dataset of (inputs, targets) with inputs {"image" uint8 (B, H, W, 3),
      "sentences" int32 (B, 9, 3)} and targets {"color_labels",
      "shape_labels"} uint8 (B, H, W).
    """
    if batch_size < 1:
        raise ValueError(
            f"Argument `batch_size` must be >= 1, received: {batch_size}."
        )
    dataset = examples.map(parse_example, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(
        batch_size,
        drop_remainder=training,
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    options = tf.data.Options()
    options.deterministic = not training
    dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_dataset(
    builder,
    split,
    batch_size,
    training,
    num_examples=None,
    shuffle_buffer=10_000,
    seed=0,
    cache=True,
    repeat=False,
):
    """Reads a split of a prepared CoSaL builder through `build_pipeline`.

    Args:
      builder: a prepared CoSaL tfds builder (see `get_builder`).
      split: "train" or "test".
      num_examples: use only the first n examples of the split (None or a
        negative number: all).
      Other arguments: as in `build_pipeline`.
    """
    examples = read_split(builder, split, num_examples)
    return build_pipeline(
        examples,
        batch_size,
        training,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        cache=cache,
        repeat=repeat,
    )


def num_split_examples(builder, split, num_examples=None):
    """Number of examples a (possibly subset) split holds."""
    total = builder.info.splits[split].num_examples
    if num_examples is None or num_examples < 0:
        return total
    return min(total, int(num_examples))


def with_model_targets(dataset, target_key):
    """Maps targets to {target_key: colour labels} for `model.fit`."""
    return dataset.map(
        lambda inputs, targets: (
            inputs,
            {target_key: targets["color_labels"]},
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def read_split(builder, split, num_examples=None):
    """The decoded examples of a prepared builder's split, in file order."""
    # The builder is ordered (disable_shuffling): files are read in order and
    # the cached examples are shuffled instead.
    return builder.as_dataset(
        split=split_name(split, num_examples),
        shuffle_files=False,
        read_config=tfds.ReadConfig(interleave_cycle_length=1),
        # Decoding only what the parser reads skips the target PNG and the
        # sentence strings.
        decoders=tfds.decode.PartialDecoding(_decoded_keys()),
    )


def epoch_seed(seed, epoch):
    """The shuffle seed of one epoch: a function of the run's seed and the
    epoch alone, so a resumed run reads the batches an uninterrupted one
    would."""
    return int(seed) * 1_000_003 + int(epoch)


def training_epochs(
    examples,
    batch_size,
    first_epoch,
    num_epochs,
    shuffle_buffer=10_000,
    seed=0,
    num_shards=1,
    shard_index=0,
):
    """Training batches of epochs first_epoch .. first_epoch + num_epochs - 1.

    Each epoch is the cached split shuffled with `epoch_seed(seed, epoch)`
    and batched with the last partial batch dropped, so the whole sequence
    is reproducible from any epoch on (`Dataset.skip` then finds any step).

    Args:
      examples: decoded examples (see `read_split`).
      batch_size: examples per batch (per replica).
      num_shards, shard_index: read every num_shards-th example from
        shard_index (one shard per input pipeline of a distributed run).

    Returns:
      A dataset of (inputs, targets) as in `build_pipeline`.
    """
    if batch_size < 1:
        raise ValueError(
            f"Argument `batch_size` must be >= 1, received: {batch_size}."
        )
    if num_shards > 1:
        examples = examples.shard(num_shards, shard_index)
    parsed = examples.map(parse_example, num_parallel_calls=tf.data.AUTOTUNE)
    parsed = parsed.cache()

    def one_epoch(epoch):
        shuffled = parsed.shuffle(
            shuffle_buffer,
            seed=epoch_seed(seed, epoch),
            reshuffle_each_iteration=False,
        )
        return shuffled.batch(batch_size, drop_remainder=True)

    # Python-side concatenation: shuffle seeds must be Python ints once a
    # global seed is set. Every epoch reads the same cache.
    epochs = range(first_epoch, first_epoch + num_epochs)
    dataset = functools.reduce(
        lambda left, right: left.concatenate(right), map(one_epoch, epochs)
    )
    options = tf.data.Options()
    options.deterministic = True
    # The core shards by example, not by file.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
    )
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
