"""CoSaL: Colorizing Shapes with Artificial Language (Chen et al. 2018).

Importing this package registers the `cosal` TFDS builder.
"""

from data_builders.cosal.cosal_dataset_builder import (
    Builder,
    CosalConfig,
    make_config,
)

__all__ = ["Builder", "CosalConfig", "make_config"]
