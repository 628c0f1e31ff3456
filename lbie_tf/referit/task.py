"""ReferIt as a Task: the paper's section 4.2 segmentation experiment (and
Hu et al. 2016's baseline) on the core.

The task's modules import TensorFlow, which takes seconds; they are
imported inside the methods that need them, so that a task built without a
config (to edit or to list examples) imports none.
"""

import copy
import inspect

from lbie_tf.core import errors
from lbie_tf.core import task as task_lib

MODEL_NAMES = ("lbie", "hu", "text_blind")


def _builder(model_name):
    """The model builder of `model_name` and the fixed arguments it gets."""
    from lbie_tf.referit import hu_baseline, lbie_model

    if model_name == "hu":
        return hu_baseline.build_hu_baseline, {}
    if model_name == "text_blind":
        return lbie_model.build_lbie_model, {"text_blind": True}
    return lbie_model.build_lbie_model, {}


def check_model_config(model_config):
    """Raises UsageError for an unknown model name or a model field its
    builder does not take (the size, vocabulary and seed come from
    `data`/`seed`)."""
    if model_config.name not in MODEL_NAMES:
        raise errors.UsageError(
            f"`model.name` must be one of {list(MODEL_NAMES)}, received: "
            f"{model_config.name!r}."
        )
    build, fixed = _builder(model_config.name)
    accepted = set(inspect.signature(build).parameters) - {
        "image_size",
        "max_tokens",
        "vocabulary_size",
        "seed",
        *fixed,
    }
    for key in model_config:
        if key != "name" and key not in accepted:
            raise errors.UsageError(
                f"`model.{key}` is not an argument of the "
                f"{model_config.name!r} model; it takes {sorted(accepted)}."
            )


@task_lib.register_task("referit")
class ReferitTask(task_lib.Task):
    """Segmentation from a referring expression (paper section 4.2; Hu et
    al. 2016's data and scores).

    Args:
      config: the ConfigDict of experiments/configs/referit.py, or None for
        a task used only to edit with a trained model or write examples.
        The given config is not changed.

    Raises:
      UsageError: (a ValueError) naming a model field no builder accepts.
    """

    def __init__(self, config=None):
        if config is not None:
            config = copy.deepcopy(config)
            check_model_config(config.model)
            if config.train.negative_weight <= 0:
                raise errors.UsageError(
                    "`train.negative_weight` must be positive; received "
                    f"{config.train.negative_weight!r}."
                )
        super().__init__(config)
        self._builder = None
        self._encoder = None

    # === Data ===
    def prepare_data(self):
        from lbie_tf.referit import datasets

        if self._builder is None:
            data = self.config.data
            self._builder = datasets.prepare_builder(
                data.data_dir,
                data.manual_dir,
                data.synthetic_train_images,
                data.synthetic_test_images,
                data.synthetic_seed,
            )
        return self._builder

    def vocabulary(self):
        """{token: id} of the prepared dataset."""
        from lbie_tf.referit import datasets

        return datasets.vocabulary_of(self.prepare_data())

    def text_encoder(self):
        """The one tokenizer of the task (tf.data and serving)."""
        from lbie_tf.referit import input_pipeline

        if self._encoder is None:
            self._encoder = input_pipeline.TextEncoder(self.vocabulary())
        return self._encoder

    def _split(self, split):
        data = self.config.data
        return data.train_split if split == "train" else data.test_split

    def num_examples(self, split):
        from lbie_tf.referit import datasets

        subset = self.config.data.train_examples if split == "train" else -1
        return datasets.num_split_examples(
            self.prepare_data(), self._split(split), subset
        )

    def build_inputs(
        self,
        split,
        training,
        batch_size,
        input_context=None,
        first_epoch=0,
        num_epochs=1,
    ):
        from lbie_tf.referit import datasets

        data = self.config.data
        builder = self.prepare_data()
        if not training:
            return datasets.evaluation_dataset(
                datasets.read_split(builder, self._split(split)),
                self.text_encoder(),
                data.image_size,
                batch_size,
            )
        examples = datasets.read_split(
            builder, self._split(split), self.num_examples(split)
        )
        shards = (1, 0)
        if input_context is not None:
            shards = (
                input_context.num_input_pipelines,
                input_context.input_pipeline_id,
            )
        return datasets.training_epochs(
            examples,
            self.text_encoder(),
            data.image_size,
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
        # These modules register every layer and loss a ReferIt model uses.
        from lbie_tf.referit import (  # noqa: F401
            hu_baseline,
            lbie_model,
            losses,
            vgg16,
        )

    def build_model(self, training_steps=None):
        from lbie_tf.referit import input_pipeline

        model_config = self.config.model.to_dict()
        build, fixed = _builder(model_config.pop("name"))
        return build(
            image_size=self.config.data.image_size,
            max_tokens=input_pipeline.MAX_TOKENS,
            vocabulary_size=len(self.vocabulary()),
            seed=self.config.seed,
            **fixed,
            **model_config,
        )

    def build_losses(self):
        from lbie_tf.referit import losses

        return {
            "logits": losses.WeightedSigmoidCrossEntropy(
                self.config.train.negative_weight
            )
        }

    def build_optimizer(self, steps_per_epoch):
        import keras

        train = self.config.train
        rate = keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate,
            decay_steps=train.decay_steps,
            decay_rate=train.decay_rate,
            staircase=True,
        )
        # Keras' decoupled weight decay on every weight but the biases
        # (DEVIATIONS.md, "ReferIt weight decay").
        if train.optimizer == "sgd":
            optimizer = keras.optimizers.SGD(
                rate,
                momentum=train.momentum,
                weight_decay=train.weight_decay or None,
            )
        elif train.optimizer == "adam":
            # For small networks trained from scratch (the synthetic
            # experiment): Hu et al.'s SGD is tuned for a pretrained VGG-16.
            optimizer = keras.optimizers.Adam(
                rate, weight_decay=train.weight_decay or None
            )
        else:
            raise errors.UsageError(
                "`train.optimizer` must be 'sgd' or 'adam', received: "
                f"{train.optimizer!r}."
            )
        if train.weight_decay:
            optimizer.exclude_from_weight_decay(var_names=["bias"])
        return optimizer

    # === Evaluation ===
    def evaluate(self, model, dataset):
        from lbie_tf.referit import evaluation

        return evaluation.evaluate_model(model, dataset)

    def headline(self, results):
        paper = self.describe_run()["paper_overall_iou"]
        return (
            f"overall_iou {results['overall_iou']:.4f} (paper {paper}), "
            f"precision@0.5 {results['precision@0.5']:.4f}, mean_iou "
            f"{results['mean_iou']:.4f}"
        )

    def describe_run(self):
        from lbie_tf.referit import table3

        model_name = self.config.model.name
        row = table3.paper_row(model_name)
        return {
            "task": self.name,
            "model": model_name,
            "image_size": self.config.data.image_size,
            "synthetic": self.config.data.synthetic_train_images > 0,
            "paper_overall_iou": None if row is None else row["overall_iou"],
        }

    def write_summaries(self, writer, model, batch, results, step):
        from lbie_tf.referit import summaries

        summaries.write_summaries(
            writer,
            model,
            batch,
            results,
            step,
            model_name=self.config.model.name,
            num_images=self.config.train.num_summary_images,
        )

    # === Export and editing ===
    def build_serving(self, model):
        from lbie_tf.referit import serving

        return serving.endpoints(
            model, self.vocabulary(), self.config.data.image_size
        )

    def serving_examples(self):
        from lbie_tf.referit import editing

        return editing.serving_examples()

    def write_edit_example(self, directory, options=None):
        """A synthetic photograph and an expression (options: `index`):
        in.png, text.txt and target.png (the true mask)."""
        from lbie_tf.referit import editing

        options = options or {}
        image_path, text, target_path = editing.write_example(
            directory, index=options.get("index", 0)
        )
        return task_lib.EditExample(
            image_path=image_path,
            text=text,
            lines=(
                f"input image:  {image_path}",
                f"expression:   {text}",
                f"true mask:    {target_path}",
                "try: python -m experiments.edit --model=<export> "
                f'--image={image_path} --text="{text}" --out=mask.png',
            ),
        )

    def edit_files(self, model_path, image_path, text, out_path, options):
        """Segments what `text` refers to in a photograph: the mask PNG at
        the photo's size in `out_path`, an overlay beside it."""
        from lbie_tf.referit import editing

        return editing.edit(model_path, image_path, text, out_path)
