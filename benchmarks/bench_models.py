"""The models `benchmarks.bench` times: one table row per model of each task.

A row names the task, the config file (under experiments/configs/) and its
argument, the data overrides that keep the benchmark's dataset small (the
model and the batch stay the config's), and what is timed. A row whose task
is not registered (or whose config file is missing) is skipped and listed
as such in bench.json, so a new wing is one row here.
"""

import dataclasses
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "experiments", "configs")

# What a worker can time: training steps, batch-1 latency and batch-64
# throughput of the Keras model and of the exported SavedModel, and the
# input pipeline.
PARTS = ("train", "keras", "saved_model", "pipeline")
DEFAULT_PARTS = PARTS

# Small datasets: enough examples for a training batch of 32 and an
# inference batch of 64, built in seconds.
_COSAL_DATA = {
    "data.overrides.train_size": 256,
    "data.overrides.test_size": 64,
    "data.train_examples": -1,
    "data.shuffle_buffer": 256,
}
_REFERIT_DATA = {
    "data.synthetic_train_images": 64,
    "data.synthetic_test_images": 16,
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One benchmarked model.

    Attributes:
      key: `<task>/<name>`, the model's key in bench.json.
      config_file: file name under experiments/configs/.
      config_argument: the argument after ':' of `--config=FILE:ARG`.
      overrides: {dotted config field: value}, applied after loading.
      parts: the subset of PARTS timed for this model.
      throughput_batch: the batch of the inference throughput figures
        (None: batch-1 latency only).
      sizes: replaces entries of the worker's FULL sizes (training
        (warm-up, rounds, steps per round), batch1_calls, throughput_calls,
        pipeline_epochs) for a model too slow for the defaults.
      onednn: the TF_ENABLE_ONEDNN_OPTS values timed (None: every value
        `--onednn` asks for).
      default: part of a plain `make bench` run (else only with --models).
    """

    key: str
    config_file: str
    config_argument: str
    overrides: dict = dataclasses.field(default_factory=dict)
    parts: tuple = DEFAULT_PARTS
    throughput_batch: int | None = 64
    sizes: dict = dataclasses.field(default_factory=dict)
    onednn: tuple | None = None
    default: bool = True

    @property
    def task(self):
        return self.key.split("/")[0]


MODELS = (
    ModelSpec("cosal/paper_t1", "cosal.py", "paper_t1_attn_d8", _COSAL_DATA),
    ModelSpec("cosal/paper_t4", "cosal.py", "paper_t4_attn_d8", _COSAL_DATA),
    ModelSpec(
        "cosal/original_t1", "cosal.py", "original_t1_attn_d8", _COSAL_DATA
    ),
    ModelSpec(
        "cosal/original_t4", "cosal.py", "original_t4_attn_d8", _COSAL_DATA
    ),
    ModelSpec("referit/lbie", "referit_synthetic.py", "lbie", _REFERIT_DATA),
    ModelSpec("referit/hu", "referit_synthetic.py", "hu", _REFERIT_DATA),
    ModelSpec(
        "referit/text_blind",
        "referit_synthetic.py",
        "text_blind",
        _REFERIT_DATA,
    ),
    # The real 512 x 512 LBIE model (full VGG-16, random weights instead of
    # ImageNet's: same speed, no download) on a synthetic vocabulary: only
    # the Keras model at batch 1, the one thing this CPU runs in seconds.
    ModelSpec(
        "referit/lbie_512",
        "referit.py",
        "lbie",
        {
            **_REFERIT_DATA,
            "data.synthetic_train_images": 8,
            "data.synthetic_test_images": 4,
            "model.vgg16_weights": "none",
            "train.batch_size": 1,
        },
        parts=("keras",),
        throughput_batch=None,
        sizes={"batch1_calls": 5},
    ),
    # The flowers generator (paper section 4.3) at 256 x 256, batch 1 as
    # configured, on a synthetic download; throughput at batch 8.
    ModelSpec(
        "flowers/lbie",
        "flowers.py",
        "lbie",
        {
            "data.synthetic_images_per_class": 2,
            "data.synthetic_classes": 14,
            "data.cache": True,
        },
        throughput_batch=8,
        sizes={
            "train": (1, 3, 2),
            "batch1_calls": 10,
            "throughput_calls": 2,
            "pipeline_epochs": 3,
        },
        # Minutes per worker at 256 x 256: oneDNN's default setting only.
        onednn=("1",),
    ),
    # A tiny model for the benchmark's own test (--models=cosal/smoke).
    ModelSpec(
        "cosal/smoke", "cosal_smoke.py", "paper_t1_attn_d4", default=False
    ),
)

# Targets of the issue; `benchmarks.bench` records each as met or missed.
TARGETS = (
    {
        "name": "cosal_saved_model_batch1_ms",
        "what": "CoSaL SavedModel serving_default, ms per image at batch 1 "
        "(median), paper T = 4",
        "model": "cosal/paper_t4",
        "limit": 5.0,
        "direction": "<=",
    },
    {
        "name": "cosal_original_t4_training_matmul_share",
        "what": "original-family T = 4 CoSaL training FLOP/s as a share of "
        "the same run's matmul FLOP/s",
        "model": "cosal/original_t4",
        "limit": 0.5,
        "direction": ">=",
    },
    {
        "name": "flowers_256_colorization_ms",
        "what": "flowers 256 x 256 colorization, ms per image (generator, "
        "batch 1, SavedModel)",
        "model": "flowers/lbie",
        "limit": 300.0,
        "direction": "<=",
    },
)


def find(key):
    """The ModelSpec of `key`; ValueError naming the known keys."""
    for spec in MODELS:
        if spec.key == key:
            return spec
    raise ValueError(
        f"unknown model {key!r}; known: {[s.key for s in MODELS]}."
    )


def _set(config, dotted, value):
    *path, leaf = dotted.split(".")
    node = config
    for name in path:
        node = node[name]
    node[leaf] = value


def load_config(spec, data_dir):
    """The spec's ConfigDict with its overrides and `data.data_dir`.

    Configs are code loaded by path, as `--config=FILE:ARG` loads them for
    the entry points; benchmarks never import experiments.
    """
    path = os.path.join(CONFIG_DIR, spec.config_file)
    module_spec = importlib.util.spec_from_file_location(
        f"bench_config_{spec.config_file[:-3]}", path
    )
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(spec.config_argument)
    for dotted, value in spec.overrides.items():
        _set(config, dotted, value)
    _set(config, "data.data_dir", data_dir)
    return config


def config_file_exists(spec):
    return os.path.isfile(os.path.join(CONFIG_DIR, spec.config_file))
