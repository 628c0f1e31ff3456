"""The flowers task's data sources and tf.data pipelines: Oxford-102 with
Reed et al.'s captions (the `oxford_flowers_captions` TFDS builder, over a
manual directory or a synthetic one written on demand), and CoSaL recoloured
with an isoluminant palette, the offline proof that the text steers colour.
"""

import functools
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

import data_builders.cosal as cosal_data
import data_builders.oxford_flowers_captions as flowers_data
from data_builders.oxford_flowers_captions import synthetic
from lbie_tf.core import artifacts, errors
from lbie_tf.flowers import input_pipeline, lab

SOURCES = ("oxford_flowers_captions", "cosal_isoluminant")
SYNTHETIC_DIR_NAME = "oxford_flowers_captions_synthetic"
VOCABULARY_FILE = "flowers_vocabulary.json"

# The isoluminant CoSaL palette: every colour at one Lab lightness, so the
# grey input shows where the shapes are but not their colours; the
# background is white. Colour label c + 1 gets chroma 40 at hue
# 30 + 360 c / C degrees. The networks read and predict Lab, never RGB;
# at 6 colours the hue-210 one lies just outside sRGB, so only its
# picture is clipped.
ISOLUMINANT_LIGHTNESS = 65.0
ISOLUMINANT_CHROMA = 40.0
BACKGROUND_LIGHTNESS = 100.0


def isoluminant_ab(num_colors):
    """float32 [num_colors + 1, 2]: the Lab ab of CoSaL label 0 (the white
    background) and of every colour label."""
    hues = np.deg2rad(30.0 + 360.0 * np.arange(num_colors) / num_colors)
    colours = ISOLUMINANT_CHROMA * np.stack([np.cos(hues), np.sin(hues)], -1)
    return np.concatenate([np.zeros((1, 2)), colours]).astype(np.float32)


# === Oxford-102 with captions ===
def _write_synthetic(manual_dir, options):
    """Writes the synthetic download once, into a temporary folder renamed
    into place, so that a run killed while writing leaves nothing."""
    if os.path.isdir(manual_dir):
        return
    parent = os.path.dirname(manual_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".manual-", dir=parent)
    try:
        synthetic.write_synthetic_download(
            os.path.join(staging, "manual"), **options
        )
        os.replace(os.path.join(staging, "manual"), manual_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare_flowers_builder(data_dir, manual_dir, synthetic_options):
    """The prepared `oxford_flowers_captions` builder.

    With `synthetic_options` (the keyword arguments of
    `data_builders.oxford_flowers_captions.synthetic.write_synthetic_download`)
    the manual directory is a synthetic download written under
    `<data_dir>/oxford_flowers_captions_synthetic/<options>/manual` the first
    time, its TFDS files beside it; otherwise `manual_dir` holds the
    Oxford-102 and Reed et al. files and TFDS writes under `data_dir`.

    Raises:
      UsageError: no manual directory is given for real data.
    """
    if synthetic_options:
        name = "_".join(
            f"{key}{value}" for key, value in sorted(synthetic_options.items())
        )
        root = os.path.join(
            os.path.expanduser(data_dir), SYNTHETIC_DIR_NAME, name
        )
        manual_dir = os.path.join(root, "manual")
        _write_synthetic(manual_dir, synthetic_options)
        tfds_dir = os.path.join(root, "tfds")
    else:
        if not manual_dir:
            raise errors.UsageError(
                "`data.manual_dir` must name a directory holding Oxford-102 "
                "and Reed et al.'s captions "
                "(data_builders/oxford_flowers_captions/README.md), or set "
                "`data.synthetic_images_per_class` > 0 for synthetic data."
            )
        manual_dir = os.path.expanduser(manual_dir)
        tfds_dir = os.path.expanduser(data_dir)
    builder = flowers_data.Builder(data_dir=tfds_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


# === CoSaL, isoluminant ===
def prepare_cosal_builder(data_dir, name, train_size, test_size):
    """The prepared CoSaL builder of the registered config `name` (e.g.
    "direct_8_small"), with `train_size` / `test_size` when positive."""
    overrides = {
        key: value
        for key, value in (("train_size", train_size), ("test_size", test_size))
        if value > 0
    }
    builder = cosal_data.Builder(
        config=cosal_data.make_config(name, **overrides),
        data_dir=os.path.expanduser(data_dir),
    )
    builder.download_and_prepare()
    return builder


# Joins the nine CoSaL sentences into one caption. A word, not a full stop:
# the caption tokenizer drops punctuation, and without a boundary word
# "circle is light green reverse triangle is ..." would run together.
COSAL_SEPARATOR = " and "


def cosal_caption(sentence_text):
    """The nine CoSaL sentences of one image as one caption."""
    return tf.strings.reduce_join(sentence_text, separator=COSAL_SEPARATOR)


# === Both ===
def read_split(builder, split, num_examples=None):
    """The decoded examples of `split` in the builder's order."""
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    if num_examples is not None and num_examples >= 0:
        dataset = dataset.take(num_examples)
    return dataset


def split_captions(source, builder, split):
    """Every caption of `split` (Python strings, in order)."""
    captions = []
    for example in read_split(builder, split).as_numpy_iterator():
        if source == "cosal_isoluminant":
            texts = [COSAL_SEPARATOR.encode().join(example["sentence_text"])]
        else:
            texts = list(example["captions"])
        captions.extend(text.decode("utf-8") for text in texts)
    return captions


def vocabulary_of(source, builder, split, min_count):
    """The token list built from `split`'s captions
    (`input_pipeline.build_vocabulary`), computed once and kept beside the
    TFDS files, so that a run, its export and a resumed run read one list.
    """
    path = os.path.join(
        builder.data_dir,
        f"{source}_{split}_min{min_count}_{VOCABULARY_FILE}",
    )
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as handle:
            return json.load(handle)
    tokens = input_pipeline.build_vocabulary(
        split_captions(source, builder, split), min_count
    )
    artifacts.write_json(path, tokens)
    return tokens


def epoch_seed(seed, epoch):
    """The seed of one epoch's shuffle and draws: a function of the run's
    seed and the epoch alone, so a resumed run reads the batches an
    uninterrupted one would."""
    return int(seed) * 1_000_003 + int(epoch)


def _options():
    options = tf.data.Options()
    options.deterministic = True
    # The core shards by example, not by file.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
    )
    return options


def _flowers_loader(load_size):
    def load(example):
        return {
            "image": input_pipeline.resize_area(example["image"], load_size),
            "captions": example["captions"],
        }

    return load


def _cosal_loader(num_colors):
    """CoSaL example -> the isoluminant picture's exact normalised L and ab
    (no RGB round trip, whose rounding would differ per colour and leak
    it into L), its caption and the labels that score it."""
    palette = tf.constant(isoluminant_ab(num_colors))

    def load(example):
        labels = tf.cast(example["color_labels"], tf.int32)
        lightness = tf.where(
            labels > 0, ISOLUMINANT_LIGHTNESS, BACKGROUND_LIGHTNESS
        )
        return {
            "lightness": lab.normalize_lightness(lightness[..., None]),
            "ab": lab.normalize_ab(tf.gather(palette, labels)),
            "captions": cosal_caption(example["sentence_text"])[None],
            "color_labels": labels,
            "cell_colors": example["cell_colors"],
            "cell_shapes": example["cell_shapes"],
        }

    return load


def _training_parse(source, encoder, crop_size, seed):
    def parse(index, example):
        draws = tf.random.experimental.stateless_split(
            tf.stack([tf.cast(seed, tf.int64), index]), 2
        )
        caption = input_pipeline.pick_caption(example["captions"], draws[0])
        if source == "cosal_isoluminant":
            # No crop or flip: a flip would contradict "left" and "right".
            lightness, ab = example["lightness"], example["ab"]
        else:
            image = input_pipeline.augment(
                example["image"], crop_size, draws[1]
            )
            lightness, ab = input_pipeline.to_model_inputs(image)
        tokens = encoder(caption[None])[0]
        return {"lightness": lightness, "tokens": tokens}, {"ab": ab}

    return parse


def training_epochs(
    source,
    examples,
    encoder,
    load_size,
    crop_size,
    num_colors,
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
    - 1: each epoch the examples shuffled, then for each one a caption
    drawn and (flowers) a crop and flip, all from `epoch_seed(seed,
    epoch)` and the example's position, batched with the last partial
    batch dropped. `cache` keeps the loaded images in memory.
    """
    if num_shards > 1:
        examples = examples.shard(num_shards, shard_index)
    if source == "cosal_isoluminant":
        load = _cosal_loader(num_colors)
    else:
        load = _flowers_loader(load_size)
    examples = examples.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        examples = examples.cache()
    examples = examples.enumerate()

    def one_epoch(epoch):
        shuffled = examples.shuffle(
            shuffle_buffer,
            seed=epoch_seed(seed, epoch),
            reshuffle_each_iteration=False,
        )
        parse = _training_parse(
            source, encoder, crop_size, epoch_seed(seed, epoch)
        )
        parsed = shuffled.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        return parsed.batch(batch_size, drop_remainder=True)

    epochs = range(first_epoch, first_epoch + num_epochs)
    dataset = functools.reduce(
        lambda left, right: left.concatenate(right), map(one_epoch, epochs)
    )
    return dataset.with_options(_options()).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(
    source, examples, encoder, crop_size, num_colors, batch_size
):
    """Test batches of (inputs, targets), the first caption of each image
    (deterministic): flowers images area-resized to `crop_size` (the
    released code's test-time size); targets hold `ab`, the `caption`
    text and, for CoSaL, `color_labels`, `cell_colors` and
    `cell_shapes`."""
    if source == "cosal_isoluminant":
        load = _cosal_loader(num_colors)
    else:
        load = _flowers_loader(crop_size)

    def parse(example):
        if source == "cosal_isoluminant":
            lightness, ab = example["lightness"], example["ab"]
            extra = {
                "color_labels": example["color_labels"],
                "cell_colors": example["cell_colors"],
                "cell_shapes": example["cell_shapes"],
            }
        else:
            lightness, ab = input_pipeline.to_model_inputs(example["image"])
            extra = {}
        caption = example["captions"][0]
        inputs = {"lightness": lightness, "tokens": encoder(caption[None])[0]}
        return inputs, {"ab": ab, "caption": caption, **extra}

    dataset = examples.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size)
    return dataset.with_options(_options()).prefetch(tf.data.AUTOTUNE)
