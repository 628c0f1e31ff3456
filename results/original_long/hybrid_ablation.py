"""Which part of the released CoSaL model keeps the text out? (diagnostic)

Trains the original family's T = 1 no-attention cell with its decoder
swapped, through the project's own training loop, and writes the usual
workdir (eval.json has the IoUs and the text sensitivity). The released
model uses `--config.model.decoder=deconv`; this script changes only the
decoder that model is built with.

  python results/original_long/hybrid_ablation.py --variant=paper_head \
      --workdir=runs/ablation/hybrid_paper_head -- --config.train.epochs=4

Variants:
  paper_head  the paper's head (1x1 conv 16 + ReLU, 1x1 conv to the
              classes, bilinear-initialised deconvolution, kernel 32 and
              stride 16 from the 3 x 3 map) instead of the deep decoder:
              what `model.decoder=classifier_upsampling` (now the
              default) builds.
  decoder_no_bn  the released decoder with its batch norms removed (the
              deconvolutions get biases instead).
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from lbie_tf.core import train_lib
from lbie_tf.cosal import released_model
from lbie_tf.cosal.released_model import build_decoder

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/cosal.py:original_t1_noattn_d8"
)
_VARIANT = flags.DEFINE_enum(
    "variant", "paper_head", ["paper_head", "decoder_no_bn"], ""
)
_WORKDIR = flags.DEFINE_string("workdir", None, "", required=True)


def _decoder_without_batch_norm(input_shape, ngf, output_channels):
    return build_decoder(input_shape, ngf, output_channels, batch_norm=False)


def main(argv):
    del argv
    config = _CONFIG.value
    if _VARIANT.value == "paper_head":
        config.model.decoder = "classifier_upsampling"
    else:
        config.model.decoder = "deconv"
        released_model.build_decoder = _decoder_without_batch_norm
    train_lib.train_and_evaluate(config, _WORKDIR.value)


if __name__ == "__main__":
    sys.exit(app.run(main))
