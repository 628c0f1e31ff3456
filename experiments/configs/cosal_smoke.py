"""A tiny CoSaL config derived from the real one, for tests, the demo's
quick variant and benchmarks: 16 training and 6 test images, batch 8.

  python -m experiments.train \\
      --config=experiments/configs/cosal_smoke.py:paper_t4_attn_d4 \\
      --workdir=/tmp/smoke

Only the sizes differ from `cosal.get_config(cell)`; every other field is
the real cell's.
"""

from experiments.configs import cosal


def get_config(cell="paper_t4_attn_d4"):
    config = cosal.get_config(cell)
    num_direct = config.data.name.split("_")[1]
    config.data.name = f"direct_{num_direct}_small"
    config.data.overrides.train_size = 16
    config.data.overrides.test_size = 6
    config.data.train_examples = -1
    config.data.shuffle_buffer = 16
    config.train.batch_size = 8
    config.train.epochs = 1
    config.train.verbose = 0
    config.train.backup_every_steps = 1
    config.eval.batch_size = 4
    return config
