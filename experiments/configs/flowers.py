"""Flowers colorization configs (paper section 4.3, Table 4 and Figures 6-7),
chosen by the config argument: "lbie" (the released generator with its
text-conditioned discriminator, default) or "no_text" (the same networks
without the caption: the paper's pix2pix-style baseline of Figure 6).

  python -m experiments.train --config=experiments/configs/flowers.py:lbie \\
      --workdir=runs/flowers_lbie --config.data.manual_dir=DIR

DIR holds the Oxford-102 JPEGs and label files and Reed et al.'s text_c10
captions (data_builders/oxford_flowers_captions/README.md; check it with
`python -m data_builders.oxford_flowers_captions.verify --manual_dir=DIR`).
The paper reports human ratings only (Table 4: consistency with the caption
0.849 for LBIE against 0.27 without text); eval.json reports this
project's automatic protocol instead (README, "Flowers colorization").
Not run here: the data needs a download, and 40 epochs of batch 1 at 256 x
256 need a GPU.

Settings are the released code's (DEVIATIONS.md, flowers rows): images
area-resized to 384 x 384, random 256 crops and flips, batch 1, Adam 1e-4
(beta_1 0.5) for both networks, one discriminator then one generator step
per batch, loss L1 x 100 + GAN x 1, 40 epochs, the generator's batch norm
on batch statistics always. The paper's recurrent variant:
`--config.model.num_steps=3 --config.model.termination=gumbel`; the
paper's loss, log(1 - D) + gamma |E - Y|_1 with gamma = 0.01:
`--config.train.l1_weight=0.01 --config.train.generator_loss=minimax`
(DEVIATIONS.md, "Flowers loss").

Synthetic flowers instead of the download:
`--config.data.synthetic_images_per_class=N` (> 0) writes a synthetic
download (data_builders.oxford_flowers_captions.synthetic) under
`data.data_dir` the first time; experiments/configs/flowers_smoke.py is
the tiny one. The isoluminant CoSaL proof is
experiments/configs/flowers_cosal.py.
"""

import ml_collections

MODELS = ("lbie", "no_text")


def get_config(model="lbie"):
    """Returns the config of one model (see the module docstring)."""
    if model not in MODELS:
        raise ValueError(
            f"the config argument must be one of {MODELS}; received {model!r}."
        )
    config = ml_collections.ConfigDict()
    config.task = "flowers"
    config.seed = 0
    config.model = ml_collections.ConfigDict(
        {
            "name": model,
            "ngf": 32,
            "embedding_dim": 300,
            "lstm_units": 64,
            # "additive" (the release) or "bilinear" (the paper's s^T W u,
            # which has no hidden layer: attention_units is then unused);
            # DEVIATIONS.md point 4. Generator and discriminator alike.
            "attention_form": "additive",
            "attention_units": 128,
            # The released code fuses once; the paper's recurrent variant
            # takes num_steps > 1 with a termination gate.
            "num_steps": 1,
            "termination": "none",
            # A GoogleNews-format word2vec binary (None: trainable
            # embeddings, initialised at random).
            "word_vectors": ml_collections.config_dict.placeholder(str),
            "batch_norm_mode": "batch_statistics_always",
            "discriminator_filters": 64,
        }
    )
    config.data = ml_collections.ConfigDict(
        {
            # "oxford_flowers_captions" or "cosal_isoluminant".
            "source": "oxford_flowers_captions",
            "manual_dir": ml_collections.config_dict.placeholder(str),
            "data_dir": "~/tensorflow_datasets",
            # > 0: a synthetic download instead of manual_dir.
            "synthetic_images_per_class": 0,
            "synthetic_classes": 14,
            "synthetic_image_size": 96,
            "synthetic_seed": 0,
            # CoSaL source only: its builder config and sizes (0: the
            # config's own).
            "cosal_name": "direct_8_small",
            "cosal_train_size": 0,
            "cosal_test_size": 0,
            "load_size": 384,
            "crop_size": 256,
            "max_tokens": 32,
            "vocabulary_min_count": 1,
            "train_split": "trainval",
            "test_split": "test",
            "shuffle_buffer": 1000,
            # Keep the loaded training images in memory (small sets only).
            "cache": False,
            # Training images read (-1: all); test images scored (-1: all).
            "train_examples": -1,
            "test_examples": -1,
        }
    )
    config.train = ml_collections.ConfigDict(
        {
            "batch_size": 1,
            "epochs": 40,
            "learning_rate": 1e-4,
            "beta_1": 0.5,
            "l1_weight": 100.0,
            "gan_weight": 1.0,
            # "non_saturating" (-log D(fake), the release) or "minimax"
            # (log(1 - D(fake)), the paper's equation).
            "generator_loss": "non_saturating",
            "jit_compile": False,
            "eval_every_epochs": 5,
            "backup_every_steps": 1000,
            "keep_checkpoints": 2,
            "num_summary_images": 4,
            "verbose": 1,
        }
    )
    config.eval = ml_collections.ConfigDict(
        {
            "batch_size": 8,
            # A trained no-text model (workdir or .keras) whose colours the
            # TensorBoard grid shows beside ours (None: not shown).
            "baseline_model": ml_collections.config_dict.placeholder(str),
        }
    )
    config.runtime = ml_collections.ConfigDict(
        {
            # default | mirrored | multi_worker, as for CoSaL.
            "strategy": "default",
            "num_cpu_devices": 0,
            "deterministic": False,
        }
    )
    return config
