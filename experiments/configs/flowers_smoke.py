"""A tiny flowers config derived from the real one, for tests: a synthetic
download (data_builders.oxford_flowers_captions.synthetic, 2 images of each
of 14 classes) written under `data.data_dir` by the task's prepare_data,
40 x 40 images cropped to 32 x 32, a generator and discriminator at 1/8 of
their filters, tiny text sizes, one epoch.

  python -m experiments.train \\
      --config=experiments/configs/flowers_smoke.py:lbie --workdir=/tmp/f

Only the sizes differ from `flowers.get_config(model)`.
"""

from experiments.configs import flowers


def get_config(model="lbie"):
    config = flowers.get_config(model)
    config.model.update(
        {
            "ngf": 4,
            "embedding_dim": 8,
            "lstm_units": 4,
            "attention_units": 4,
            "discriminator_filters": 4,
        }
    )
    config.data.update(
        {
            "synthetic_images_per_class": 2,
            "synthetic_classes": 14,
            "synthetic_image_size": 48,
            "load_size": 40,
            "crop_size": 32,
            "max_tokens": 12,
            "shuffle_buffer": 64,
            "cache": True,
        }
    )
    config.train.update(
        {
            "batch_size": 4,
            "epochs": 1,
            "verbose": 0,
            # A backup at each epoch's end (the task checklist asks for
            # one after every step where it kills a run).
            "backup_every_steps": 0,
            "eval_every_epochs": 1,
            "num_summary_images": 2,
        }
    )
    config.eval.batch_size = 4
    return config
