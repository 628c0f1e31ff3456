"""CoSaL as a Task: the paper's section 4.1 experiment on the core.

The task's modules import TensorFlow, which takes seconds; they are
imported inside the methods that need them, so that `experiments.edit`
can check a user's input and fail in well under a second.
"""

import copy

from lbie_tf.core import task as task_lib

# Fields that configs written by earlier versions lack, with the value those
# versions used (the original family had only the released decoder, the
# paper family no gate warm-up, every run a constant learning rate).
_LEGACY_MODEL_FIELDS = {
    "original": {
        "decoder": "deconv",
        "word_bidirectional": False,
        "unit_forget_bias": False,
    },
    "paper": {
        "termination_initial_bias": 0.0,
        "termination_warmup": 0.0,
        "termination_warmup_selection": "last",
    },
}
_LEGACY_TRAIN_FIELDS = {"learning_rate_schedule": "constant"}


def upgrade_legacy_config(config):
    """Adds the fields an older run's config.json lacks, with the values
    that run used (in place; `config` is the task's own copy)."""
    with config.unlocked():
        model_fields = _LEGACY_MODEL_FIELDS.get(config.model.family, {})
        for key, value in model_fields.items():
            if key not in config.model:
                config.model[key] = value
        for key, value in _LEGACY_TRAIN_FIELDS.items():
            if key not in config.train:
                config.train[key] = value
        for key in ("cell", "paper_iou"):
            if key not in config:
                config[key] = None
    return config


# Workdirs and .keras files written before `config.task` hold CoSaL runs.
@task_lib.register_task("cosal", legacy=True)
class CosalTask(task_lib.Task):
    """Colourising shapes with artificial language (paper section 4.1).

    Args:
      config: the ConfigDict of experiments/configs/cosal.py, or None for a
        task used only to export or edit a trained model. The class count
        follows the dataset (background + its colours); the config given
        is not changed.

    Raises:
      UsageError: (a ValueError) naming a model field no builder accepts.
    """

    def __init__(self, config=None):
        if config is not None:
            from lbie_tf.cosal import input_pipeline, models

            config = upgrade_legacy_config(copy.deepcopy(config))
            num_colors = input_pipeline.builder_config(config.data).num_colors
            config.model.num_classes = num_colors + 1
            models.check_model_config(config.model)
        super().__init__(config)
        self._builder = None

    # === Data ===
    def prepare_data(self):
        from lbie_tf.cosal import input_pipeline

        if self._builder is None:
            self._builder = input_pipeline.prepare(
                input_pipeline.get_builder(self.config.data)
            )
        return self._builder

    def num_examples(self, split):
        from lbie_tf.cosal import input_pipeline

        subset = self.config.data.train_examples if split == "train" else None
        return input_pipeline.num_split_examples(
            self.prepare_data(), split, subset
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
        from lbie_tf.cosal import input_pipeline, models

        builder = self.prepare_data()
        if not training:
            return input_pipeline.make_dataset(
                builder, split, batch_size, training=False
            )
        examples = input_pipeline.read_split(
            builder, split, self.num_examples(split)
        )
        shards = (1, 0)
        if input_context is not None:
            shards = (
                input_context.num_input_pipelines,
                input_context.input_pipeline_id,
            )
        dataset = input_pipeline.training_epochs(
            examples,
            batch_size,
            first_epoch,
            num_epochs,
            shuffle_buffer=self.config.data.shuffle_buffer,
            seed=self.config.seed,
            num_shards=shards[0],
            shard_index=shards[1],
        )
        return input_pipeline.with_model_targets(
            dataset, models.target_output(self.config.model)
        )

    # === Model ===
    def register_keras_objects(self):
        # The model module imports every layer and loss a CoSaL model uses.
        from lbie_tf.cosal import models  # noqa: F401

    def build_model(self, training_steps=None):
        from lbie_tf.cosal import models

        return models.build_cosal_model(self.config.model, training_steps)

    def build_losses(self):
        from lbie_tf.cosal import losses, models

        model_config = self.config.model
        weight = self.config.train.foreground_weight
        if models.target_output(model_config) == "step_logits":
            loss = losses.MixtureLikelihoodLoss(
                weight, epsilon=model_config.termination_epsilon
            )
        else:
            loss = losses.WeightedPixelCrossEntropy(weight)
        return {models.target_output(model_config): loss}

    def build_optimizer(self, steps_per_epoch):
        from lbie_tf.core import optimizers

        train = self.config.train
        return optimizers.adam(
            train.learning_rate,
            train.learning_rate_schedule,
            None if steps_per_epoch is None else train.epochs * steps_per_epoch,
            beta_1=train.beta_1,
        )

    # === Evaluation ===
    def evaluate(self, model, dataset):
        from lbie_tf.cosal import evaluation

        return evaluation.evaluate_model(
            model, dataset, self.config.model.num_classes
        )

    def headline(self, results):
        return (
            f"iou_shapes {results['iou_shapes']:.4f} (paper "
            f"{self.config.paper_iou}), miou_colors "
            f"{results['miou_colors']:.4f}, text sensitivity "
            f"{results['text_sensitivity']:.3f}"
        )

    def describe_run(self):
        from lbie_tf.cosal import evaluation

        return {"task": self.name, **evaluation.describe_run(self.config)}

    def write_summaries(self, writer, model, batch, results, step):
        from lbie_tf.cosal import summaries

        summaries.write_summaries(
            writer,
            model,
            batch,
            results,
            step,
            paper_iou=self.config.paper_iou,
            num_images=self.config.train.num_summary_images,
        )

    # === Export and editing ===
    def build_serving(self, model):
        from lbie_tf.cosal import serving

        return serving.endpoints(model)

    def serving_examples(self):
        import io

        import numpy as np
        from PIL import Image

        from data_builders.cosal import generator

        example = generator.generate_example(
            generator.example_rng(0, "test", 0), num_direct=8
        )
        png = io.BytesIO()
        Image.fromarray(example["image"]).save(png, format="PNG")
        sentences = [s.encode() for s in example["sentence_text"]]
        return {
            "serving_default": {
                "image": example["image"][None],
                "sentences": np.array([sentences]),
            },
            "serving_bytes": {
                "image_bytes": np.array([png.getvalue()]),
                "text": np.array([b". ".join(sentences)]),
            },
        }

    def write_edit_example(self, directory, options=None):
        """A test-split example (options: `index`, `num_direct`): in.png,
        text.txt and target.png (the true colours)."""
        from lbie_tf.cosal import editing

        options = options or {}
        image_path, text_path, target_path = editing.write_example(
            directory,
            num_direct=options.get("num_direct", 8),
            index=options.get("index", 0),
        )
        with open(text_path, encoding="utf-8") as file:
            text = ". ".join(line.strip() for line in file if line.strip())
        return task_lib.EditExample(
            image_path=image_path,
            text=text,
            lines=(
                f"input image:  {image_path}",
                f"description:  {text_path}",
                f"true colours: {target_path}",
                "try: python -m experiments.edit --model=<model> "
                f"--image={image_path} --text_file={text_path} --out=out.png",
            ),
        )

    def explain_serving(self, text, outputs):
        """Figure 5 of one `serving_bytes` answer (models with attention)."""
        from lbie_tf.cosal import serving_explain

        return serving_explain.explain(text, outputs)

    def edit_files(self, model_path, image_path, text, out_path, options):
        """Colours a silhouette image as its nine sentences say (options:
        `explain` a Figure 5 picture path, `scale` the enlargement)."""
        import os

        from lbie_tf.cosal import editing

        written = editing.edit(
            model_path=model_path,
            image_path=image_path,
            text=text,
            out_path=out_path,
            explain_path=options.get("explain"),
            scale=options.get("scale", 1),
        )
        lines = [f"edited image: {os.path.abspath(written.out_path)}"]
        if written.explain_path is not None:
            lines.append(
                f"explanation:  {os.path.abspath(written.explain_path)}"
            )
        lines.append("colour per cell:")
        names = written.cell_colors
        for row in range(3):
            cells = names[3 * row : 3 * row + 3]
            lines.append(
                ("  " + " | ".join(f"{n:11s}" for n in cells)).rstrip()
            )
        return lines
