"""Tests of the referit TFDS builder on synthetic downloads."""

import shutil
import tempfile

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import data_builders.referit  # noqa: F401  (registers "referit")
from data_builders.referit import layout, synthetic, verify
from data_builders.referit.referit_dataset_builder import Builder
from tests.data_builders.referit.downloads import expected_order, read_json


class ReferitBuilderTest(tfds.testing.DatasetBuilderTestCase):
    """tfds' declarative builder test on a 5 / 2 / 3 image download."""

    DATASET_CLASS = Builder
    SKIP_CHECKSUMS = True  # Manual data: nothing is downloaded.
    OVERLAPPING_SPLITS = ["train", "val", "trainval"]  # trainval = both.

    @classmethod
    def setUpClass(cls):
        # The test case reads the manual directory from EXAMPLE_DIR, so the
        # synthetic download is written before tfds' own set-up.
        cls._temporary = tempfile.mkdtemp()
        root = f"{cls._temporary}/download"
        summary = synthetic.write_dataset(root, 5, 3, 11, num_val_images=2)
        cls.EXAMPLE_DIR = root
        cls.SPLITS = {s: counts["expressions"] for s, counts in summary.items()}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls._temporary)


# Other code relies on exactly these names, dtypes and shapes.
CONTRACT = {
    "image": (tf.uint8, (None, None, 3)),
    "mask": (tf.uint8, (None, None)),
    "expression": (tf.string, ()),
    "expression_index": (tf.int32, ()),
    "imcrop_name": (tf.string, ()),
    "image_id": (tf.string, ()),
    "bbox": (tf.float32, (4,)),
}


def _build(manual_dir, data_dir):
    builder = Builder(data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def _load(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split)))


def test_feature_contract_and_vocabulary(synthetic_download, tmp_path):
    root, _ = synthetic_download
    _build(root, tmp_path)
    reloaded = Builder(data_dir=tmp_path)
    spec = reloaded.info.features.get_tensor_info()
    assert {k: (v.dtype, v.shape) for k, v in spec.items()} == CONTRACT
    vocabulary = (root / layout.VOCABULARY_FILE).read_text().splitlines()
    assert reloaded.info.metadata["vocabulary"] == vocabulary
    assert vocabulary[:4] == ["<pad>", "<go>", "<eos>", "<unk>"]


def test_examples_follow_hu_et_al_test_order(synthetic_download, tmp_path):
    root, summary = synthetic_download
    builder = _build(root, tmp_path)
    bboxes = read_json(root, layout.BBOX_FILE)
    sizes = read_json(root, layout.IMSIZE_FILE)
    for split in layout.SPLITS:
        examples = _load(builder, split)
        found = [
            (
                e["imcrop_name"].decode(),
                int(e["expression_index"]),
                e["expression"].decode(),
            )
            for e in examples
        ]
        assert found == expected_order(root, split), split
        assert len(found) == summary[split]["expressions"]
        for example, (name, _, _) in zip(examples, found, strict=True):
            image_id = example["image_id"].decode()
            assert image_id == name.split("_")[0]
            np.testing.assert_array_equal(example["bbox"], bboxes[name])
            width, height = sizes[f"{image_id}.jpg"]
            assert example["image"].shape == (height, width, 3)
            assert example["mask"].shape == (height, width)


def test_example_keys_are_imcrop_and_index(synthetic_download, tmp_path):
    root, _ = synthetic_download
    annotations = layout.check_download(root).annotations
    builder = Builder(data_dir=tmp_path)
    keys = [
        key
        for key, _ in builder._generate_examples(str(root), annotations, "test")
    ]
    order = expected_order(root, "test")
    assert keys == [f"{name}__{index}" for name, index, _ in order]
    assert len(set(keys)) == len(keys)


def test_grey_and_cmyk_jpegs_become_rgb_at_full_resolution(
    download_copy, tmp_path
):
    root = download_copy
    order = expected_order(root, "test")
    image_ids = list(dict.fromkeys(name.split("_")[0] for name, _, _ in order))
    modes = {image_ids[0]: "L", image_ids[1]: "CMYK"}
    for image_id, mode in modes.items():
        path = root / layout.image_file(image_id)
        Image.open(path).convert(mode).save(path, format="JPEG", quality=90)
        assert Image.open(path).mode == mode
    # Real masks mark the background with values other than 1 too.
    odd_name = order[0][0]
    odd_path = root / layout.mask_file(odd_name)
    segmentation = scipy.io.loadmat(odd_path)["segimg_t"]
    odd = np.where(segmentation == 0, 0, 7).astype(np.uint8)
    odd[0, :] = np.where(odd[0, :] == 0, 0, 255)
    scipy.io.savemat(odd_path, {"segimg_t": odd})

    examples = _load(_build(root, tmp_path), "test")
    seen = set()
    for example in examples:
        image_id = example["image_id"].decode()
        name = example["imcrop_name"].decode()
        with Image.open(root / layout.image_file(image_id)) as source:
            expected_image = np.asarray(source.convert("RGB"))
        # Pixel for pixel what Pillow (so Hu et al.'s skimage) decodes.
        np.testing.assert_array_equal(example["image"], expected_image)
        if modes.get(image_id) == "L":
            image = example["image"]
            assert (image[..., 0] == image[..., 1]).all()
            assert (image[..., 0] == image[..., 2]).all()
        segimg_t = scipy.io.loadmat(root / layout.mask_file(name))["segimg_t"]
        assert example["mask"].dtype == np.uint8
        assert example["mask"].shape == segimg_t.shape
        assert example["mask"].shape == expected_image.shape[:2]
        np.testing.assert_array_equal(
            example["mask"], (segimg_t == 0).astype(np.uint8)
        )
        assert example["mask"].sum() > 0
        seen.add(modes.get(image_id, "RGB"))
        seen.add("odd background" if name == odd_name else "mask")
    assert seen == {"L", "CMYK", "RGB", "odd background", "mask"}


def test_a_broken_download_is_refused_before_anything_is_written(
    download_copy, tmp_path, capsys
):
    name = next(iter(read_json(download_copy, layout.query_file("test"))))
    (download_copy / layout.mask_file(name)).unlink()
    data_dir = tmp_path / "tfds"
    with pytest.raises(
        data_builders.referit.ReferitDownloadError,
        match=f"{layout.mask_file(name)}: missing",
    ) as error_info:
        _build(download_copy, data_dir)
    assert isinstance(error_info.value, ValueError)
    message = str(error_info.value)
    assert "\n" not in message
    # The builder's message is the verify command's.
    assert verify.main([f"--manual_dir={download_copy}"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"

    assert not Builder(data_dir=data_dir).is_prepared()
    # tfds keeps only its note of the builder's default config (.config/).
    leftovers = [
        p
        for p in data_dir.rglob("*")
        if p.is_file() and ".config" not in p.parts
    ]
    assert leftovers == []
    assert not (data_dir / "referit").exists() or not any(
        (data_dir / "referit").glob("1.0.0*")
    )
