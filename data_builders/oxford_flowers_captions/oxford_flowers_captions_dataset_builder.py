"""The `oxford_flowers_captions` TFDS builder (Oxford-102, Reed's captions)."""

import io

import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from data_builders.oxford_flowers_captions import layout
from data_builders.oxford_flowers_captions.layout import FlowersDownloadError

_DESCRIPTION = """\
The Oxford-102 flowers (Nilsback & Zisserman 2008: 8,189 photographs of
102 flower species) with the ten captions per image that Reed et al.
collected for "Learning Deep Representations of Fine-Grained Visual
Descriptions" (CVPR 2016), in their class-disjoint splits: trainval (82
classes; train and val are its parts) and test (20 classes). One example
per image, in image-id order, at the original resolution. The flowers
experiment of Chen et al., "Language-Based Image Editing with Recurrent
Attentive Models" (CVPR 2018), section 4.3, colourises these images from
their captions. See README.md for the files.
"""

_HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put into one directory: jpg/ (from Oxford's 102flowers.tgz), imagelabels.mat
and setid.mat (Oxford's site), and the contents of Reed et al.'s
cvpr2016_flowers archive (text_c10/ and the *classes.txt files), as
data_builders/oxford_flowers_captions/README.md describes; check it with
`python -m data_builders.oxford_flowers_captions.verify --manual_dir=DIR`,
then pass `download_config=tfds.download.DownloadConfig(manual_dir=DIR)`.
"""

# The modes whose stored JPEG TensorFlow decodes to Pillow's RGB pixels.
_KEPT_MODES = ("RGB", "L")
_REENCODE_QUALITY = 100


class ExactJpegImage(tfds.features.Image):
    """An RGB image decoded exactly as Pillow decodes the stored JPEG.

    tf.io.decode_jpeg with dct_method="INTEGER_ACCURATE" reproduces
    Pillow's pixels, whereas tfds' default decoding (TensorFlow's fast
    IDCT) is off by a few grey levels; channels=3 turns a grey JPEG into
    RGB. CMYK JPEGs are converted by the builder, not here (see
    `stored_jpeg`).
    """

    def decode_example(self, example):
        image = tf.io.decode_jpeg(
            example, channels=3, dct_method="INTEGER_ACCURATE"
        )
        image.set_shape(self.shape)
        return image


def stored_jpeg(data):
    """The JPEG bytes an example stores for one image file's bytes.

    RGB and grey JPEGs are kept byte for byte: ExactJpegImage decodes them
    to Pillow's RGB pixels. Other modes (CMYK, whose Adobe inversion
    TensorFlow's decoder does not always honour) are decoded by Pillow,
    converted to RGB by Pillow, and re-encoded at quality 100 without
    chroma subsampling, within a few grey levels of Pillow's pixels.

    Raises:
      layout.BrokenFileError: Pillow cannot decode the whole image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in _KEPT_MODES:
                return data
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as error:
        raise layout.BrokenFileError(f"cannot be decoded ({error})") from error
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=_REENCODE_QUALITY, subsampling=0)
    return buffer.getvalue()


def _read(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


class Builder(tfds.core.GeneratorBasedBuilder):
    """Oxford-102 flowers and captions from a manual directory (section 4.3).

    `_split_generators` first checks the whole directory (as
    `data_builders.oxford_flowers_captions.verify` does) and raises
    FlowersDownloadError, before anything is written, if a file is missing
    or broken. Examples come in image-id order, so write-time shuffling is
    disabled; the key is the file name.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

    def _info(self) -> tfds.core.DatasetInfo:
        # README.md is written for people; the short description and the
        # citation from CITATIONS.bib go into the dataset info.
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            citation=self.get_metadata().citation,
            features=tfds.features.FeaturesDict(
                {
                    "image": ExactJpegImage(
                        shape=(None, None, 3),
                        encoding_format="jpeg",
                        doc="RGB photograph at its original resolution.",
                    ),
                    "label": tfds.features.ClassLabel(
                        names=[
                            layout.class_name(c)
                            for c in range(1, layout.NUM_CLASSES + 1)
                        ],
                        doc="Oxford class id - 1 (name: the caption folder).",
                    ),
                    "file_name": tfds.features.Text(
                        doc='The image file, "image_00001.jpg".'
                    ),
                    "captions": tfds.features.Sequence(
                        tfds.features.Text(),
                        doc="Every caption of the image, in file order.",
                    ),
                    "oxford_split": tfds.features.ClassLabel(
                        names=list(layout.OXFORD_SPLITS),
                        doc="The setid.mat key holding the image.",
                    ),
                }
            ),
            supervised_keys=None,
            homepage=_HOMEPAGE,
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        manual_dir = str(dl_manager.manual_dir)
        report = layout.check_download(manual_dir)
        report.raise_for_problems()
        return {
            split: self._generate_examples(manual_dir, report.download, split)
            for split in layout.SPLITS
        }

    def _generate_examples(self, manual_dir, download, split):
        for image_id in download.split_images[split]:
            path = layout.image_file(image_id)
            try:
                image = stored_jpeg(_read(f"{manual_dir}/{path}"))
            except (layout.BrokenFileError, tf.errors.OpError) as error:
                # check_download read only the header; the body is decoded
                # here, and a file replaced since must not slip through.
                raise FlowersDownloadError(
                    f"{manual_dir}/{path}: {error}; restore the file, check "
                    "again with python -m data_builders.oxford_flowers_"
                    f"captions.verify --manual_dir={manual_dir} and build "
                    "again."
                ) from error
            file_name = layout.image_name(image_id)
            yield (
                file_name,
                {
                    "image": image,
                    "label": download.labels[image_id] - 1,
                    "file_name": file_name,
                    "captions": list(download.captions[image_id]),
                    "oxford_split": download.oxford_split[image_id],
                },
            )
