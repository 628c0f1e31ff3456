"""The `referit` TFDS builder: ReferIt from a manual download (Hu et al.)."""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_builders.referit import layout
from data_builders.referit.layout import ReferitDownloadError

_DESCRIPTION = """\
ReferIt (Kazemzadeh et al. 2014) as prepared by Hu et al., "Segmentation
from Natural Language Expressions" (ECCV 2016): photographs of the
segmented IAPR TC-12 benchmark (saiapr_tc-12), each region's referring
expressions and its segmentation mask. One example per (region,
expression), in the order of Hu et al.'s test script; images and masks at
their original resolution. The ReferIt experiment of Chen et al., "Language-
Based Image Editing with Recurrent Attentive Models" (CVPR 2018), section
4.2, uses the trainval and test splits. See README.md for the files.
"""

_HOMEPAGE = "https://github.com/ronghanghu/text_objseg"

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
The original hosts are gone: assemble one directory in Hu et al.'s
text_objseg layout (images/<id>.jpg, mask/<id>_<region>.mat, the
referit_*.json files, referit_{split}_imlist.txt, vocabulary_referit.txt),
as data_builders/referit/README.md describes, check it with
`python -m data_builders.referit.verify --manual_dir=DIR`, then pass
`download_config=tfds.download.DownloadConfig(manual_dir=DIR)`.
"""


class ExactJpegImage(tfds.features.Image):
    """An RGB image decoded exactly as Pillow decodes the JPEG.

    Examples store the original JPEG bytes (grey and CMYK JPEGs included).
    tf.io.decode_jpeg with dct_method="INTEGER_ACCURATE" reproduces
    Pillow's pixels, which Hu et al.'s skimage.io.imread returned, whereas
    tfds' default decoding (TensorFlow's fast IDCT) is off by a few grey
    levels. channels=3 turns grey and CMYK JPEGs into RGB.
    """

    def decode_example(self, example):
        image = tf.io.decode_jpeg(
            example, channels=3, dct_method="INTEGER_ACCURATE"
        )
        image.set_shape(self.shape)
        return image


def _read(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


class Builder(tfds.core.GeneratorBasedBuilder):
    """ReferIt segmentation data from a manual directory (paper section 4.2).

    `_split_generators` first checks the whole directory (as
    `data_builders.referit.verify` does) and raises ReferitDownloadError,
    before anything is written, if a file is missing or broken. Examples
    keep the order of Hu et al.'s test script (layout.ordered_regions), so
    write-time shuffling is disabled; the key is "<imcrop>__<index>".
    The vocabulary is stored in `info.metadata["vocabulary"]`.
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
                        doc="RGB photograph at its original resolution.",
                    ),
                    "mask": tfds.features.Tensor(
                        shape=(None, None),
                        dtype=np.uint8,
                        encoding=tfds.features.Encoding.ZLIB,
                        doc="1 on the region (segimg_t == 0), else 0.",
                    ),
                    "expression": tfds.features.Text(
                        doc="The referring expression, as written."
                    ),
                    "expression_index": tfds.features.Scalar(
                        dtype=np.int32,
                        doc="Position in the region's expression list.",
                    ),
                    "imcrop_name": tfds.features.Text(
                        doc='The region, "<image id>_<region number>".'
                    ),
                    "image_id": tfds.features.Text(doc="The image's id."),
                    "bbox": tfds.features.Tensor(
                        shape=(4,),
                        dtype=np.float32,
                        doc="[x1, y1, x2, y2] in pixels, inclusive.",
                    ),
                }
            ),
            supervised_keys=None,
            homepage=_HOMEPAGE,
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        manual_dir = str(dl_manager.manual_dir)
        report = layout.check_download(manual_dir)
        report.raise_for_problems()
        annotations = report.annotations
        # The tokenizer needs the vocabulary after the manual directory is
        # gone, so it travels with the prepared dataset.
        self.info.metadata["vocabulary"] = list(annotations.vocabulary)
        return {
            split: self._generate_examples(manual_dir, annotations, split)
            for split in layout.SPLITS
        }

    def _generate_examples(self, manual_dir, annotations, split):
        queries = annotations.queries[split]
        for image_id, names in layout.ordered_regions(
            queries, annotations.imcrops
        ):
            image_path = layout.image_file(image_id)
            image_bytes = _read(f"{manual_dir}/{image_path}")
            width, height = layout.jpeg_size(image_bytes)
            for name in names:
                mask_path = layout.mask_file(name)
                segmentation = layout.read_segmentation(
                    _read(f"{manual_dir}/{mask_path}")
                )
                # check_download compared the same shapes; a file replaced
                # since must not slip through.
                if segmentation.shape != (height, width):
                    raise ReferitDownloadError(
                        f"{manual_dir}/{mask_path}: segimg_t is "
                        f"{segmentation.shape[0]} x {segmentation.shape[1]} "
                        f"but {image_path} is {height} x {width}; restore "
                        "both files and build again."
                    )
                mask = layout.foreground(segmentation)
                bbox = np.asarray(annotations.bboxes[name], np.float32)
                for index, expression in enumerate(queries[name]):
                    yield (
                        f"{name}__{index}",
                        {
                            "image": image_bytes,
                            "mask": mask,
                            "expression": expression,
                            "expression_index": index,
                            "imcrop_name": name,
                            "image_id": image_id,
                            "bbox": bbox,
                        },
                    )
