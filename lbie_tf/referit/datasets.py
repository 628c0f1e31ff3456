"""ReferIt's tf.data pipelines: the `referit` TFDS builder (over a manual
directory, or a synthetic one written on demand), decoded pairs parsed into
model inputs, training epochs in a seeded order and the test split with
the original masks."""

import functools
import os
import shutil
import tempfile

import tensorflow as tf
import tensorflow_datasets as tfds

import data_builders.referit as referit_data
from data_builders.referit import synthetic
from lbie_tf.core import errors
from lbie_tf.referit import input_pipeline

# Where a synthetic dataset goes under `data.data_dir` (its manual
# directory and its TFDS files), one folder per (train, test, seed).
SYNTHETIC_DIR_NAME = "referit_synthetic"


def synthetic_root(data_dir, train_images, test_images, seed):
    return os.path.join(
        os.path.expanduser(data_dir),
        SYNTHETIC_DIR_NAME,
        f"train{train_images}_test{test_images}_seed{seed}",
    )


def _write_synthetic(manual_dir, train_images, test_images, seed):
    """Writes the synthetic download once: into a temporary folder renamed
    into place, so a run killed while writing leaves nothing half done."""
    if os.path.isdir(manual_dir):
        return
    parent = os.path.dirname(manual_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".manual-", dir=parent)
    try:
        synthetic.write_dataset(
            os.path.join(staging, "manual"), train_images, test_images, seed
        )
        os.replace(os.path.join(staging, "manual"), manual_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare_builder(
    data_dir,
    manual_dir,
    synthetic_train_images,
    synthetic_test_images,
    synthetic_seed,
):
    """The prepared `referit` builder.

    With `synthetic_train_images` > 0 the manual directory is a synthetic
    download (`data_builders.referit.synthetic.write_dataset`) written
    under `<data_dir>/referit_synthetic/train<N>_test<M>_seed<S>/manual`
    the first time, and its TFDS files go beside it (`manual_dir` is
    ignored); otherwise `manual_dir` holds Hu et al.'s files and TFDS
    writes under `data_dir`.

    Raises:
      UsageError: no manual directory is given for real data.
    """
    if synthetic_train_images > 0:
        root = synthetic_root(
            data_dir,
            synthetic_train_images,
            synthetic_test_images,
            synthetic_seed,
        )
        manual_dir = os.path.join(root, "manual")
        _write_synthetic(
            manual_dir,
            synthetic_train_images,
            synthetic_test_images,
            synthetic_seed,
        )
        tfds_dir = os.path.join(root, "tfds")
    else:
        if not manual_dir:
            raise errors.UsageError(
                "`data.manual_dir` must name a directory in Hu et al.'s "
                "ReferIt layout (data_builders/referit/README.md), or set "
                "`data.synthetic_train_images` > 0 for synthetic data."
            )
        manual_dir = os.path.expanduser(manual_dir)
        tfds_dir = os.path.expanduser(data_dir)
    builder = referit_data.Builder(data_dir=tfds_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def vocabulary_of(builder):
    """{token: id} of the prepared dataset (id = position)."""
    return {
        token: index
        for index, token in enumerate(builder.info.metadata["vocabulary"])
    }


def num_split_examples(builder, split, subset=-1):
    """Pairs in `split`, at most `subset` of them (-1: all)."""
    total = builder.info.splits[split].num_examples
    return total if subset is None or subset < 0 else min(subset, total)


def read_split(builder, split, num_examples=None):
    """The decoded pairs of `split` in the builder's order (Hu et al.'s),
    the first `num_examples` of them."""
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    if num_examples is not None:
        dataset = dataset.take(num_examples)
    return dataset


def _parse(encoder, image_size):
    def parse(example):
        """A pair -> model inputs and the training target: the image and
        mask letterboxed to S x S, the expression as 20 token ids."""
        inputs = {
            "image": input_pipeline.letterbox_image(
                example["image"], image_size
            ),
            "expression": encoder(tf.reshape(example["expression"], [1]))[0],
        }
        mask = input_pipeline.letterbox_mask(example["mask"], image_size)
        return inputs, {"logits": tf.cast(mask, tf.float32)[..., None]}

    return parse


def epoch_seed(seed, epoch):
    """The shuffle seed of one epoch: a function of the run's seed and the
    epoch alone, so a resumed run reads the batches an uninterrupted one
    would."""
    return int(seed) * 1_000_003 + int(epoch)


def _options():
    options = tf.data.Options()
    options.deterministic = True
    # The core shards by example, not by file.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
    )
    return options


def training_epochs(
    examples,
    encoder,
    image_size,
    batch_size,
    first_epoch,
    num_epochs,
    shuffle_buffer,
    seed,
    cache,
    num_shards=1,
    shard_index=0,
):
    """Training batches of epochs first_epoch .. first_epoch + num_epochs
    - 1: each epoch the pairs shuffled with `epoch_seed(seed, epoch)`,
    parsed, and batched with the last partial batch dropped.

    `cache` keeps the parsed pairs in memory (a small or synthetic set);
    without it the decoded pairs are shuffled and parsed each epoch.
    """
    if num_shards > 1:
        examples = examples.shard(num_shards, shard_index)
    parse = _parse(encoder, image_size)
    if cache:
        examples = examples.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        examples = examples.cache()

    def one_epoch(epoch):
        shuffled = examples.shuffle(
            shuffle_buffer,
            seed=epoch_seed(seed, epoch),
            reshuffle_each_iteration=False,
        )
        if not cache:
            shuffled = shuffled.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        return shuffled.batch(batch_size, drop_remainder=True)

    # Python-side concatenation: shuffle seeds must be Python ints once a
    # global seed is set.
    epochs = range(first_epoch, first_epoch + num_epochs)
    dataset = functools.reduce(
        lambda left, right: left.concatenate(right), map(one_epoch, epochs)
    )
    return dataset.with_options(_options()).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(examples, encoder, image_size, batch_size):
    """Test batches of (inputs, targets): inputs as in training, targets
    {"mask": uint8 [B, H_max, W_max] original masks zero-padded to the
    batch's largest, "height", "width": int32 [B] their sizes}."""

    def parse(example):
        inputs = {
            "image": input_pipeline.letterbox_image(
                example["image"], image_size
            ),
            "expression": encoder(tf.reshape(example["expression"], [1]))[0],
        }
        shape = tf.shape(example["mask"])
        targets = {
            "mask": example["mask"],
            "height": shape[0],
            "width": shape[1],
        }
        return inputs, targets

    dataset = examples.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.padded_batch(batch_size)
    return dataset.with_options(_options()).prefetch(tf.data.AUTOTUNE)
