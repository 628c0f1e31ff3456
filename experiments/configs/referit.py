"""ReferIt configs (paper section 4.2, Table 3), chosen by the config
argument: "lbie" (the paper's model, default), "hu" (Hu et al. 2016's
baseline) or "text_blind" (the LBIE model with the expression replaced by a
learned constant: the control that shows what the text adds).

  python -m experiments.train --config=experiments/configs/referit.py:lbie \
      --workdir=runs/referit_lbie --config.data.manual_dir=DIR

DIR holds Hu et al.'s files (data_builders/referit/README.md; check it with
`python -m data_builders.referit.verify --manual_dir=DIR`). Targets (paper
Table 3, ReferIt test, overall IoU): Hu et al. 0.4803, LBIE 0.5009;
eval.json reports ours beside the paper's (`paper_overall_iou`). Not run
here: the real data and VGG-16 weights need a download.

Training as Hu et al.: SGD momentum 0.9, learning rate 0.01 divided by 10
every 6,000 steps, batch 10, 3 epochs of the 59,976 trainval pairs (17,991
steps; Hu et al. 18,000), weight decay 5e-4 on every weight but the biases
(Keras' decoupled form, DEVIATIONS.md "ReferIt weight decay"), background
pixels weighted 1/3, the VGG-16 convolutions frozen.

Synthetic data instead of ReferIt: `--config.data.synthetic_train_images=N`
(> 0) writes a synthetic download (data_builders.referit.synthetic) under
`data.data_dir` the first time and trains on it; experiments/configs/
referit_smoke.py is the tiny one. The synthetic experiment (the three
models, a small backbone trained from scratch on CPU) is
experiments/configs/referit_synthetic.py.
"""

import ml_collections


def _backbone():
    return {
        "filters_scale": 1.0,
        "fc_units": 4096,
        "fc8_units": 1000,
        "input_scale": 1.0,
        "freeze_convolutions": True,
        "bilinear_variant": "hu",
        # "imagenet" (Keras' weights), "none" (from scratch) or a path.
        "vgg16_weights": "imagenet",
        "vgg16_npz": None,
    }


def _hu_model():
    return ml_collections.ConfigDict(
        {
            "name": "hu",
            "embedding_dim": 1000,
            "lstm_units": 1000,
            "mlp_units": 500,
            **_backbone(),
        }
    )


def _lbie_model(name):
    return ml_collections.ConfigDict(
        {
            "name": name,
            "embedding_dim": 1000,
            "lstm_units": 1024,
            # Section 4.2 is silent on these (lbie_model.build_lbie_model
            # and DEVIATIONS.md "ReferIt LBIE model" say why each).
            "feature_layer": "fc8",
            "spatial_features": False,
            "fusion_units": 1024,
            "num_steps": 3,
            "attention_form": "additive",
            "attention_units": 512,
            "fusion_kernel_size": 1,
            "termination": "gumbel",
            "classifier_units": 500,
            **_backbone(),
        }
    )


def get_config(model="lbie"):
    """Returns the config of one Table 3 row (see the module docstring)."""
    if model not in ("lbie", "hu", "text_blind"):
        raise ValueError(
            "the config argument must be lbie, hu or text_blind; received "
            f"{model!r}."
        )
    config = ml_collections.ConfigDict()
    config.task = "referit"
    config.seed = 0
    config.model = _hu_model() if model == "hu" else _lbie_model(model)
    config.data = ml_collections.ConfigDict(
        {
            # Hu et al.'s files (None: set it, or use synthetic data).
            "manual_dir": ml_collections.config_dict.placeholder(str),
            "data_dir": "~/tensorflow_datasets",
            # > 0: a synthetic download of this many train(val) images
            # instead of manual_dir (module docstring).
            "synthetic_train_images": 0,
            "synthetic_test_images": 0,
            "synthetic_seed": 0,
            "image_size": 512,
            "train_split": "trainval",
            "test_split": "test",
            "shuffle_buffer": 1000,
            # Keep the parsed training pairs in memory (small sets only).
            "cache": False,
            # Training pairs read (-1: all).
            "train_examples": -1,
        }
    )
    config.train = ml_collections.ConfigDict(
        {
            "batch_size": 10,
            "epochs": 3,
            # "sgd" (Hu et al.'s, with momentum) or "adam".
            "optimizer": "sgd",
            "learning_rate": 0.01,
            "decay_steps": 6000,
            "decay_rate": 0.1,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "negative_weight": 1 / 3,
            "jit_compile": False,
            "eval_every_epochs": 1,
            "backup_every_steps": 500,
            "keep_checkpoints": 2,
            "num_summary_images": 4,
            "verbose": 1,
        }
    )
    config.eval = ml_collections.ConfigDict({"batch_size": 10})
    config.runtime = ml_collections.ConfigDict(
        {
            # default | mirrored | multi_worker, as for CoSaL.
            "strategy": "default",
            "num_cpu_devices": 0,
            "deterministic": False,
        }
    )
    return config
