"""A tiny ReferIt config derived from the real one, for tests: a synthetic
download of 3 training and 2 test images written under `data.data_dir` by
the task's prepare_data, 64 x 64 inputs, a VGG-16 at 1/16 of its filters
trained from scratch, tiny text and fusion sizes, one epoch.

  python -m experiments.train \\
      --config=experiments/configs/referit_smoke.py:lbie --workdir=/tmp/r

Only the sizes differ from `referit.get_config(model)`.
"""

from experiments.configs import referit

SMALL_BACKBONE = {
    "filters_scale": 1 / 16,
    "fc_units": 16,
    "fc8_units": 16,
    "input_scale": 1 / 128,
    "freeze_convolutions": False,
    "vgg16_weights": "none",
}


def get_config(model="lbie"):
    config = referit.get_config(model)
    config.model.update(SMALL_BACKBONE)
    config.model.embedding_dim = 8
    config.model.lstm_units = 8
    if model == "hu":
        config.model.mlp_units = 8
    else:
        config.model.fusion_units = 8
        config.model.attention_units = 4
        config.model.classifier_units = 8
    config.data.synthetic_train_images = 3
    config.data.synthetic_test_images = 2
    config.data.image_size = 64
    config.data.shuffle_buffer = 64
    config.data.cache = True
    config.train.batch_size = 4
    config.train.epochs = 1
    config.train.learning_rate = 0.01
    config.train.verbose = 0
    config.train.backup_every_steps = 1
    config.train.num_summary_images = 2
    config.eval.batch_size = 4
    return config
