"""ReferIt segmentation data (Hu et al. 2016's layout) for the LBIE port.

Importing this package registers the `referit` TFDS builder.
"""

from data_builders.referit.layout import ReferitDownloadError
from data_builders.referit.referit_dataset_builder import (
    Builder,
    ExactJpegImage,
)

__all__ = ["Builder", "ExactJpegImage", "ReferitDownloadError"]
