"""Oxford-102 flowers with Reed et al.'s captions, for the LBIE port.

Importing this package registers the `oxford_flowers_captions` TFDS builder.
"""

from data_builders.oxford_flowers_captions.layout import FlowersDownloadError
from data_builders.oxford_flowers_captions.oxford_flowers_captions_dataset_builder import (  # noqa: E501
    Builder,
    ExactJpegImage,
)

__all__ = ["Builder", "ExactJpegImage", "FlowersDownloadError"]
