"""The offline ReferIt experiment: the LBIE model, Hu et al.'s baseline and
a text-blind LBIE model, each with a small VGG-16 trained from scratch on a
synthetic referring-expression set in ReferIt's on-disk layout
(data_builders.referit.synthetic: 2 to 4 coloured shapes per image, each
expression naming colour, shape and/or position so that only the text tells
which object is meant).

  python -m experiments.train \\
      --config=experiments/configs/referit_synthetic.py:lbie \\
      --workdir=runs/referit_synthetic/lbie
  (and :hu, :text_blind)

Results, commands and wall times: results/referit_synthetic.md / .json.
Only sizes, the optimizer (Adam: Hu et al.'s SGD schedule is tuned for a
pretrained VGG-16) and the length differ from `referit.get_config(model)`.
"""

from experiments.configs import referit

SMALL_BACKBONE = {
    "filters_scale": 1 / 8,
    "fc_units": 64,
    "fc8_units": 64,
    "input_scale": 1 / 128,
    "freeze_convolutions": False,
    "vgg16_weights": "none",
}


def get_config(model="lbie"):
    config = referit.get_config(model)
    config.model.update(SMALL_BACKBONE)
    config.model.embedding_dim = 32
    config.model.lstm_units = 64
    if model == "hu":
        config.model.mlp_units = 64
    else:
        config.model.fusion_units = 64
        config.model.attention_units = 32
        config.model.classifier_units = 64
    config.data.synthetic_train_images = 1500
    config.data.synthetic_test_images = 200
    config.data.image_size = 64
    config.data.shuffle_buffer = 10_000
    config.data.cache = True
    config.train.optimizer = "adam"
    config.train.batch_size = 32
    config.train.epochs = 15
    config.train.learning_rate = 1e-3
    config.train.decay_steps = 100_000
    config.train.weight_decay = 0.0
    config.train.eval_every_epochs = 5
    config.train.verbose = 2
    config.eval.batch_size = 50
    return config
