"""The offline proof that the caption steers the colour (issue: "text
steers colour"): CoSaL recoloured with an isoluminant palette (every shape
colour at L = 65, the background white), so the grey input shows where the
shapes are but nothing of their colours; the flowers colorization GAN and
its no-text baseline are trained on it and scored by the colour of each
shape read from the predicted ab (`shape_color_accuracy`). A model that
ignores the text can only guess.

  python -m experiments.colorization_cosal --workdir=runs/colorization_cosal

trains both ("lbie" and "no_text" config arguments) and writes
results/colorization_cosal.md / .json. One model:

  python -m experiments.train \\
      --config=experiments/configs/flowers_cosal.py:lbie \\
      --workdir=runs/colorization_cosal/lbie

Only the data source and the sizes differ from `flowers.get_config(model)`:
CoSaL's 48 x 48 images need no crop (nor a flip, which would contradict
"left" and "right"), and a small generator trains on CPU in minutes.
"""

from experiments.configs import flowers


def get_config(model="lbie"):
    config = flowers.get_config(model)
    config.model.update(
        {
            "ngf": 16,
            "embedding_dim": 32,
            "lstm_units": 64,
            "attention_units": 64,
            "discriminator_filters": 16,
        }
    )
    config.data.update(
        {
            "source": "cosal_isoluminant",
            # 8 of the 9 sentences name a cell's colour directly.
            "cosal_name": "direct_8_small",
            "cosal_train_size": 10_000,
            "cosal_test_size": 1_000,
            "load_size": 48,
            "crop_size": 48,
            # Nine sentences of up to six words ("reverse triangle is light
            # green") and the eight "and" between them: up to 62 words.
            "max_tokens": 64,
            "shuffle_buffer": 10_000,
            "cache": True,
        }
    )
    config.train.update(
        {
            "batch_size": 16,
            # The text model learns in stages (results/colorization_cosal.md
            # lists its test accuracy by epoch); both models take about 4
            # hours on 2 CPU cores.
            "epochs": 50,
            "learning_rate": 1e-3,
            "eval_every_epochs": 2,
            "backup_every_steps": 500,
            "verbose": 2,
        }
    )
    config.eval.batch_size = 100
    return config
