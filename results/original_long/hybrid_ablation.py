"""Which part of the released CoSaL model keeps the text out? (diagnostic)

Trains the original family's T = 1 no-attention cell with one part swapped
for the paper model's, through the project's own training loop, and writes
the usual workdir (eval.json has the IoUs and the text sensitivity).

  python results/original_long/hybrid_ablation.py --variant=paper_head \
      --workdir=runs/ablation/hybrid_paper_head -- --config.train.epochs=4

Variants:
  paper_head  the released encoder and text encoder, concatenation, then
              the paper's head (1x1 conv 16 + ReLU, 1x1 conv to the
              classes, bilinear-initialised deconvolution, kernel 32 and
              stride 16 from the 3 x 3 map) instead of the deep decoder.
  decoder_no_bn  the released model with its decoder's batch norms
              removed (the deconvolutions get biases instead).
"""

import sys

import keras
from absl import app, flags
from keras import layers
from ml_collections import config_flags

from keras_layers.bilinear_upsampling import BilinearConv2DTranspose
from keras_layers.hierarchical_text_encoder import HierarchicalTextEncoder
from lbie_tf import cosal_models, train_lib
from lbie_tf.cosal_original_model import encode_image
from lbie_tf.cosal_paper_model import concatenate_last_text_vector

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/cosal.py:original_t1_noattn_d8"
)
_VARIANT = flags.DEFINE_enum(
    "variant", "paper_head", ["paper_head", "decoder_no_bn"], ""
)
_WORKDIR = flags.DEFINE_string("workdir", None, "", required=True)


def _fused_inputs(model_config):
    """The released encoder, text encoder and concatenation."""
    image = keras.Input((48, 48, 3), dtype="uint8", name="image")
    sentences = keras.Input((9, 3), dtype="int32", name="sentences")
    image_features = encode_image(image, model_config.ngf)
    text_features = HierarchicalTextEncoder(
        word_units=model_config.word_units,
        sentence_units=model_config.sentence_units,
        vocabulary_size=model_config.vocabulary_size,
        embedding="one_hot",
        unit_forget_bias=False,
        seed=model_config.seed,
        name="text_encoder",
    )(sentences)
    fused = concatenate_last_text_vector(image_features, text_features)
    return {"image": image, "sentences": sentences}, fused


def _decoder_no_bn_model(model_config):
    inputs, fused = _fused_inputs(model_config)
    ngf = model_config.ngf
    x = fused
    for index, filters in enumerate((8 * ngf, 4 * ngf, 2 * ngf, ngf), start=1):
        x = layers.Conv2DTranspose(
            filters, 4, strides=2, padding="same", activation="relu",
            name=f"deconv{index}",
        )(x)
        x = layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"conv{index}"
        )(x)
    logits = layers.Conv2D(
        model_config.num_classes, 3, padding="same", name="output_conv"
    )(x)
    logits = layers.Identity(name="logits")(logits)
    return keras.Model(inputs, {"logits": logits})


def _paper_head_model(model_config):
    inputs, fused = _fused_inputs(model_config)
    x = layers.Conv2D(16, 1, activation="relu", name="classifier_hidden")(
        fused
    )
    x = layers.Conv2D(model_config.num_classes, 1, name="classifier")(x)
    logits = BilinearConv2DTranspose(
        model_config.num_classes, 32, 16, padding="same", name="upsampling"
    )(x)
    logits = layers.Identity(name="logits")(logits)
    return keras.Model(inputs, {"logits": logits})


def main(argv):
    del argv
    cosal_models.build_original_model = {
        "paper_head": _paper_head_model,
        "decoder_no_bn": _decoder_no_bn_model,
    }[_VARIANT.value]
    train_lib.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    sys.exit(app.run(main))
