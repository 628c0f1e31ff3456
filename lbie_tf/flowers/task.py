"""Flowers colorization as a Task: the paper's section 4.3 experiment (a
text-conditioned GAN on Oxford-102 with Reed et al.'s captions) on the
core, with the isoluminant CoSaL proof as a second data source.

The task's modules import TensorFlow, which takes seconds; they are
imported inside the methods that need them, so that a task built without a
config (to edit or to list examples) imports none.
"""

import copy

from lbie_tf.core import errors
from lbie_tf.core import task as task_lib

MODEL_NAMES = ("lbie", "no_text")
_SOURCES = ("oxford_flowers_captions", "cosal_isoluminant")
# The choices of generator.build_generator and gan.ColorizationGAN,
# checked here without importing Keras.
_TERMINATIONS = ("none", "gumbel")
_ATTENTION_FORMS = ("additive", "bilinear")
_NORMS = ("batch_statistics_always", "standard")
_G_LOSSES = ("non_saturating", "minimax")


def _attention_form(config):
    # Runs trained before the switch existed have no such key: additive.
    return config.model.get("attention_form", "additive")


def _check_config(config):
    if config.model.name not in MODEL_NAMES:
        raise errors.UsageError(
            f"`model.name` must be one of {list(MODEL_NAMES)}, received: "
            f"{config.model.name!r}."
        )
    if config.data.source not in _SOURCES:
        raise errors.UsageError(
            f"`data.source` must be one of {list(_SOURCES)}, received: "
            f"{config.data.source!r}."
        )
    if config.data.crop_size % 4 or config.data.crop_size <= 0:
        raise errors.UsageError(
            "`data.crop_size` must be a positive multiple of 4 (the "
            f"generator's stride); received {config.data.crop_size!r}."
        )
    if config.data.load_size < config.data.crop_size:
        raise errors.UsageError(
            f"`data.load_size` ({config.data.load_size}) must be at least "
            f"`data.crop_size` ({config.data.crop_size})."
        )
    choices = (
        ("model.termination", config.model.termination, _TERMINATIONS),
        ("model.attention_form", _attention_form(config), _ATTENTION_FORMS),
        ("model.batch_norm_mode", config.model.batch_norm_mode, _NORMS),
        ("train.generator_loss", config.train.generator_loss, _G_LOSSES),
    )
    for field, value, allowed in choices:
        if value not in allowed:
            raise errors.UsageError(
                f"`{field}` must be one of {list(allowed)}, received: "
                f"{value!r}."
            )
    if config.model.name == "no_text" and config.model.num_steps != 1:
        raise errors.UsageError(
            "`model.num_steps` must be 1 for the no_text model (it has no "
            f"fusion); received {config.model.num_steps!r}."
        )
    for key in ("l1_weight", "gan_weight"):
        if config.train[key] < 0:
            raise errors.UsageError(
                f"`train.{key}` must be >= 0; received {config.train[key]!r}."
            )


@task_lib.register_task("flowers")
class FlowersTask(task_lib.Task):
    """Colorization from a caption (paper section 4.3; the released code's
    generator, discriminator and training).

    Args:
      config: the ConfigDict of experiments/configs/flowers.py, or None for
        a task used only to edit with an export or write examples. The
        given config is not changed.

    Raises:
      UsageError: (a ValueError) naming a bad field.
    """

    def __init__(self, config=None):
        if config is not None:
            config = copy.deepcopy(config)
            _check_config(config)
        super().__init__(config)
        self._builder = None
        self._tokens = None
        self._encoder = None
        self._baseline = None

    # === Data ===
    @property
    def _source(self):
        return self.config.data.source

    def prepare_data(self):
        from lbie_tf.flowers import datasets

        if self._builder is None:
            data = self.config.data
            if self._source == "cosal_isoluminant":
                self._builder = datasets.prepare_cosal_builder(
                    data.data_dir,
                    data.cosal_name,
                    data.cosal_train_size,
                    data.cosal_test_size,
                )
            else:
                synthetic = None
                if data.synthetic_images_per_class > 0:
                    synthetic = {
                        "num_images_per_class": (
                            data.synthetic_images_per_class
                        ),
                        "num_classes": data.synthetic_classes,
                        "image_size": data.synthetic_image_size,
                        "seed": data.synthetic_seed,
                    }
                self._builder = datasets.prepare_flowers_builder(
                    data.data_dir, data.manual_dir, synthetic
                )
        return self._builder

    def _split(self, split):
        data = self.config.data
        if self._source == "cosal_isoluminant":
            return split
        return data.train_split if split == "train" else data.test_split

    def vocabulary(self):
        """The token list of the training captions."""
        from lbie_tf.flowers import datasets

        if self._tokens is None:
            self._tokens = datasets.vocabulary_of(
                self._source,
                self.prepare_data(),
                self._split("train"),
                self.config.data.vocabulary_min_count,
            )
        return self._tokens

    def text_encoder(self):
        """The one tokenizer of the task (tf.data and serving)."""
        from lbie_tf.flowers import input_pipeline

        if self._encoder is None:
            self._encoder = input_pipeline.CaptionEncoder(
                self.vocabulary(), self.config.data.max_tokens
            )
        return self._encoder

    def num_examples(self, split):
        data = self.config.data
        total = self.prepare_data().info.splits[self._split(split)]
        subset = data.train_examples if split == "train" else data.test_examples
        count = total.num_examples
        return count if subset < 0 else min(subset, count)

    def _num_colors(self):
        if self._source != "cosal_isoluminant":
            return 0
        return self.prepare_data().builder_config.num_colors

    def build_inputs(
        self,
        split,
        training,
        batch_size,
        input_context=None,
        first_epoch=0,
        num_epochs=1,
    ):
        from lbie_tf.flowers import datasets

        data = self.config.data
        examples = datasets.read_split(
            self.prepare_data(), self._split(split), self.num_examples(split)
        )
        if not training:
            return datasets.evaluation_dataset(
                self._source,
                examples,
                self.text_encoder(),
                data.crop_size,
                self._num_colors(),
                batch_size,
            )
        shards = (1, 0)
        if input_context is not None:
            shards = (
                input_context.num_input_pipelines,
                input_context.input_pipeline_id,
            )
        return datasets.training_epochs(
            self._source,
            examples,
            self.text_encoder(),
            data.load_size,
            data.crop_size,
            self._num_colors(),
            batch_size,
            first_epoch,
            num_epochs,
            shuffle_buffer=data.shuffle_buffer,
            seed=self.config.seed,
            cache=data.cache,
            num_shards=shards[0],
            shard_index=shards[1],
        )

    # === Model ===
    def register_keras_objects(self):
        # These modules register every layer and model a flowers GAN uses.
        from lbie_tf.flowers import (  # noqa: F401
            discriminator,
            gan,
            generator,
        )

    def _word_vectors(self):
        from lbie_tf.flowers import word_vectors

        path = self.config.model.word_vectors
        if not path:
            return None
        return word_vectors.load_word2vec_binary(
            path, self.vocabulary(), self.config.model.embedding_dim
        )

    def build_model(self, training_steps=None):
        from lbie_tf.flowers import discriminator, gan, generator

        model = self.config.model
        text = model.name == "lbie"
        size = self.config.data.crop_size
        if self._source == "cosal_isoluminant":
            size = self.prepare_data().builder_config.image_size
        common = {
            "vocabulary_size": len(self.vocabulary()),
            "max_tokens": self.config.data.max_tokens,
            "embedding_dim": model.embedding_dim,
            "lstm_units": model.lstm_units,
            "attention_form": _attention_form(self.config),
            "attention_units": model.attention_units,
            "text": text,
            "seed": self.config.seed,
        }
        word_vectors = self._word_vectors()
        colorizer = generator.build_generator(
            image_size=None,
            ngf=model.ngf,
            num_steps=model.num_steps,
            termination=model.termination,
            batch_norm_mode=model.batch_norm_mode,
            word_vectors=word_vectors,
            training_steps=training_steps,
            **common,
        )
        critic = discriminator.build_discriminator(
            image_size=size,
            filters=model.discriminator_filters,
            word_vectors=word_vectors,
            **common,
        )
        return gan.ColorizationGAN(colorizer, critic)

    def build_losses(self):
        # The GAN's train_step holds its losses (gan.ColorizationGAN).
        return None

    def build_optimizer(self, steps_per_epoch):
        import keras

        train = self.config.train
        return keras.optimizers.Adam(train.learning_rate, beta_1=train.beta_1)

    def compile(self, model, steps_per_epoch=None, optimizer=None):
        """Two Adam optimizers (the released code's); on resume `optimizer`
        is the loaded generator optimizer and the discriminator's comes back
        with the model, both with their state."""
        train = self.config.train
        d_optimizer = getattr(model, "d_optimizer", None)
        model.compile(
            g_optimizer=optimizer or self.build_optimizer(steps_per_epoch),
            d_optimizer=d_optimizer or self.build_optimizer(steps_per_epoch),
            l1_weight=train.l1_weight,
            gan_weight=train.gan_weight,
            generator_loss=train.generator_loss,
            jit_compile=train.jit_compile,
        )
        return model

    # === Evaluation ===
    def evaluate(self, model, dataset):
        from lbie_tf.flowers import evaluation

        return evaluation.evaluate_model(
            model,
            dataset,
            source=self._source,
            num_colors=self._num_colors(),
        )

    def headline(self, results):
        if self._source == "cosal_isoluminant":
            return (
                f"shape colour accuracy {results['shape_color_accuracy']:.4f}"
                f", l1 {results['l1']:.4f}"
            )
        match = results["match_rate"]
        match = "n/a" if match is None else f"{match:.4f}"
        return (
            f"colour match {match}, psnr {results['mean_psnr_db']:.2f} dB, "
            f"ssim {results['mean_ssim']:.4f}, l1 {results['l1']:.4f}"
        )

    def describe_run(self):
        return {
            "task": self.name,
            "model": self.config.model.name,
            "source": self._source,
            "crop_size": self.config.data.crop_size,
            "synthetic": self.config.data.synthetic_images_per_class > 0,
        }

    def write_summaries(self, writer, model, batch, results, step):
        from lbie_tf.flowers import summaries

        path = self.config.eval.baseline_model
        if path and self._baseline is None:
            self._baseline = self.load_model(path)
        summaries.write_summaries(
            writer,
            model,
            batch,
            results,
            step,
            num_images=self.config.train.num_summary_images,
            baseline=self._baseline,
        )

    # === Export and editing ===
    def build_serving(self, model):
        from lbie_tf.flowers import serving

        size = self.config.data.crop_size
        if self._source == "cosal_isoluminant":
            size = self.prepare_data().builder_config.image_size
        return serving.endpoints(
            model.generator,
            self.vocabulary(),
            self.config.data.max_tokens,
            size,
        )

    def serving_examples(self):
        from lbie_tf.flowers import editing

        return editing.serving_examples()

    def write_edit_example(self, directory, options=None):
        """A synthetic flower photograph and a caption: in.png, text.txt."""
        from lbie_tf.flowers import editing

        image_path, text = editing.write_example(directory)
        return task_lib.EditExample(
            image_path=image_path,
            text=text,
            lines=(
                f"input image: {image_path}",
                f"caption:     {text}",
                "try: python -m experiments.edit --model=<export> "
                f'--image={image_path} --text="{text}" --out=out.png',
            ),
        )

    def edit_files(self, model_path, image_path, text, out_path, options):
        """Colours a photograph as `text` says: the colourised image at the
        photo's size in `out_path`, a side-by-side picture beside it."""
        from lbie_tf.flowers import editing

        return editing.edit(model_path, image_path, text, out_path)
