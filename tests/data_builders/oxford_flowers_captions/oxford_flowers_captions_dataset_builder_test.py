"""Tests of the oxford_flowers_captions TFDS builder on synthetic downloads."""

import shutil
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import data_builders.oxford_flowers_captions  # noqa: F401  (registers it)
from data_builders.oxford_flowers_captions import layout, synthetic, verify
from data_builders.oxford_flowers_captions.oxford_flowers_captions_dataset_builder import (  # noqa: E501
    Builder,
)
from tests.data_builders.oxford_flowers_captions import downloads


class FlowersBuilderTest(tfds.testing.DatasetBuilderTestCase):
    """tfds' declarative builder test on a 12-class, 24-image download."""

    DATASET_CLASS = Builder
    SKIP_CHECKSUMS = True  # Manual data: nothing is downloaded.
    OVERLAPPING_SPLITS = ["train", "val", "trainval"]  # trainval = both.

    @classmethod
    def setUpClass(cls):
        # The test case reads the manual directory from EXAMPLE_DIR, so the
        # synthetic download is written before tfds' own set-up.
        cls._temporary = tempfile.mkdtemp()
        root = f"{cls._temporary}/download"
        summary = synthetic.write_synthetic_download(
            root, num_classes=12, num_images_per_class=2, image_size=32
        )
        cls.EXAMPLE_DIR = root
        cls.SPLITS = {s: counts["images"] for s, counts in summary.items()}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls._temporary)


# Other code relies on exactly these names, dtypes and shapes.
CONTRACT = {
    "image": (tf.uint8, (None, None, 3)),
    "label": (tf.int64, ()),
    "file_name": (tf.string, ()),
    "captions": (tf.string, (None,)),
    "oxford_split": (tf.int64, ()),
}


def _build(manual_dir, data_dir):
    builder = Builder(data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def _load(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split)))


def test_feature_contract(synthetic_download, tmp_path):
    root, _ = synthetic_download
    _build(root, tmp_path)
    reloaded = Builder(data_dir=tmp_path)
    spec = reloaded.info.features.get_tensor_info()
    assert {k: (v.dtype, v.shape) for k, v in spec.items()} == CONTRACT
    label = reloaded.info.features["label"]
    assert label.num_classes == 102
    assert label.int2str(0) == "class_00001"
    assert label.int2str(101) == "class_00102"
    oxford = reloaded.info.features["oxford_split"]
    assert oxford.names == ["trnid", "valid", "tstid"]
    assert set(reloaded.info.splits) == {"train", "val", "trainval", "test"}


def test_examples_are_the_split_classes_images_in_id_order(
    synthetic_download, tmp_path
):
    root, summary = synthetic_download
    builder = _build(root, tmp_path)
    labels = downloads.labels(root)
    setid = downloads.setid(root)
    oxford_of = {
        int(i): key for key, ids in setid.items() for i in ids.tolist()
    }
    seen = {}
    for split in layout.SPLITS:
        examples = _load(builder, split)
        names = [e["file_name"].decode() for e in examples]
        expected = downloads.split_image_ids(root, split)
        assert names == [layout.image_name(i) for i in expected], split
        assert len(examples) == summary[split]["images"]
        classes = set()
        for example, image_id in zip(examples, expected, strict=True):
            class_id = int(labels[image_id - 1])
            assert example["label"] == class_id - 1
            classes.add(layout.class_name(class_id))
            oxford = layout.OXFORD_SPLITS[example["oxford_split"]]
            assert oxford == oxford_of[image_id]
            lines = (
                downloads.caption_path(root, image_id)
                .read_text(encoding="utf-8")
                .splitlines()
            )
            assert [c.decode() for c in example["captions"]] == lines
            with Image.open(root / layout.image_file(image_id)) as source:
                pixels = np.asarray(source.convert("RGB"))
            # Pixel for pixel what Pillow decodes (grey images too).
            np.testing.assert_array_equal(example["image"], pixels)
        assert classes == set(downloads.class_list(root, split))
        seen[split] = set(names)
    # The caption splits are class-disjoint, so image-disjoint as well.
    assert not seen["trainval"] & seen["test"]
    assert not seen["train"] & seen["val"]
    assert seen["train"] | seen["val"] == seen["trainval"]


def test_caption_rules_in_the_built_dataset(download_copy, tmp_path):
    image_id, _ = downloads.first_test_image(download_copy)
    path = downloads.caption_path(download_copy, image_id)
    text = (
        "\ufeffthis flower has p\u00e9tales in \u201cpink\u201d.   \r\n"
        "\n"
        "  \t \n"
        "the flower is white in color.\t\n"
    )
    path.write_bytes(text.encode("utf-8"))
    examples = _load(_build(download_copy, tmp_path), "test")
    example = next(
        e
        for e in examples
        if e["file_name"].decode() == layout.image_name(image_id)
    )
    assert [c.decode("utf-8") for c in example["captions"]] == [
        "this flower has p\u00e9tales in \u201cpink\u201d.",
        "the flower is white in color.",
    ]


def test_grey_and_cmyk_jpegs_become_rgb(download_copy, tmp_path):
    root = download_copy
    image_ids = downloads.split_image_ids(root, "test")
    colour = np.asarray(
        synthetic.draw_flower(np.random.default_rng(0), 1, 41, 37)
    )
    cmyk = downloads.jpeg_bytes(Image.fromarray(colour).convert("CMYK"))
    plain_cmyk = downloads.without_adobe_marker(cmyk)
    assert Image.open(root / layout.image_file(image_ids[0])).mode == "RGB"
    modes = {
        image_ids[0]: (
            "L",
            downloads.jpeg_bytes(Image.fromarray(colour).convert("L")),
        ),
        image_ids[1]: ("CMYK", cmyk),
        image_ids[2]: ("CMYK without an Adobe marker", plain_cmyk),
    }
    for image_id, (_, data) in modes.items():
        (root / layout.image_file(image_id)).write_bytes(data)
    # TensorFlow's own decoder gets a CMYK JPEG without an Adobe marker
    # wrong; the builder converts CMYK with Pillow instead.
    plain_by_tf = tf.io.decode_jpeg(plain_cmyk, channels=3).numpy()
    with Image.open(root / layout.image_file(image_ids[2])) as source:
        assert source.mode == "CMYK"
        pillow_plain = np.asarray(source.convert("RGB"))
    assert np.abs(plain_by_tf.astype(int) - pillow_plain).max() > 100

    examples = _load(_build(root, tmp_path), "test")
    by_id = {int(e["file_name"][6:11]): e for e in examples}
    for image_id, (mode, _) in modes.items():
        image = by_id[image_id]["image"]
        with Image.open(root / layout.image_file(image_id)) as source:
            expected = np.asarray(source.convert("RGB")).astype(int)
        assert image.dtype == np.uint8 and image.shape == expected.shape
        difference = np.abs(image.astype(int) - expected)
        if mode == "L":
            np.testing.assert_array_equal(image, expected)
            assert (image[..., 0] == image[..., 2]).all()
        else:
            # Re-encoded at quality 100 without chroma subsampling.
            assert difference.max() <= 6, (mode, difference.max())
            assert difference.mean() < 1, (mode, difference.mean())
    # The CMYK pictures are the colour picture, up to JPEG losses.
    assert np.abs(by_id[image_ids[1]]["image"].astype(int) - colour).mean() < 8


@pytest.mark.parametrize(
    "breaker",
    [
        downloads.missing_jpg,
        downloads.missing_caption_file,
        downloads.missing_labels_key,
        downloads.missing_setid_key,
        downloads.unknown_class,
        downloads.truncated_jpeg,
        downloads.caption_not_utf8,
    ],
)
def test_a_broken_download_is_refused_before_anything_is_written(
    download_copy, tmp_path, capsys, breaker
):
    expected = breaker(download_copy)
    data_dir = tmp_path / "tfds"
    with pytest.raises(
        data_builders.oxford_flowers_captions.FlowersDownloadError
    ) as error_info:
        _build(download_copy, data_dir)
    assert isinstance(error_info.value, ValueError)
    message = str(error_info.value)
    assert expected in message
    assert "\n" not in message
    # The builder's message is the verify command's.
    assert verify.main([f"--manual_dir={download_copy}"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"

    assert not Builder(data_dir=data_dir).is_prepared()
    assert downloads.leftovers(data_dir) == []


def test_an_image_broken_after_the_check_stops_the_build(
    download_copy, tmp_path
):
    download = layout.check_download(download_copy).download
    image_id = download.split_images["test"][0]
    path = download_copy / layout.image_file(image_id)
    path.write_bytes(b"\xff\xd8 not a JPEG any more")
    builder = Builder(data_dir=tmp_path)
    with pytest.raises(
        data_builders.oxford_flowers_captions.FlowersDownloadError,
        match=f"{layout.image_file(image_id)}: cannot be decoded",
    ):
        list(builder._generate_examples(str(download_copy), download, "test"))
