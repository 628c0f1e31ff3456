"""Trains a CoSaL model: data, model, model.fit with callbacks, artefacts."""

import glob
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from data_builders.cosal import vocabulary
from lbie_tf import cosal_input, cosal_losses, cosal_models, evaluate_lib

_CHECKPOINT_PATTERN = re.compile(r"ckpt-(\d+)\.keras$")
# Label 0 is the white background, label c + 1 colour c.
PALETTE = np.array(((255, 255, 255),) + vocabulary.COLOR_RGB, np.uint8)


def save_model_atomically(model, path):
    """Saves a .keras file so that `path` never holds a half-written model.

    The model is written to a temporary file in the same directory and
    renamed over `path` (a rename within one file system is atomic).
    """
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
    model.save(temporary)
    os.replace(temporary, path)


def latest_checkpoint(checkpoint_dir):
    """(epoch, path) of the newest complete checkpoint, or (0, None)."""
    best = (0, None)
    for path in glob.glob(os.path.join(checkpoint_dir, "ckpt-*.keras")):
        match = _CHECKPOINT_PATTERN.search(os.path.basename(path))
        if match and int(match.group(1)) > best[0]:
            best = (int(match.group(1)), path)
    return best


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the whole model (with optimizer state) every few epochs.

    Files are `ckpt-<epoch>.keras`, written through a temporary file and a
    rename, so a crash never leaves a half-written checkpoint that a resumed
    run would load; only the newest `keep` are kept.
    """

    def __init__(self, checkpoint_dir, every_epochs=1, keep=2):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self.every_epochs = max(1, int(every_epochs))
        self.keep = max(1, int(keep))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        path = os.path.join(self.checkpoint_dir, f"ckpt-{epoch + 1:04d}.keras")
        save_model_atomically(self.model, path)
        checkpoints = sorted(
            glob.glob(os.path.join(self.checkpoint_dir, "ckpt-*.keras"))
        )
        for old in checkpoints[: -self.keep]:
            os.remove(old)


def colorize(labels):
    """(B, H, W) colour labels -> (B, H, W, 3) uint8 RGB images."""
    return tf.gather(tf.constant(PALETTE), tf.cast(labels, tf.int32))


def attention_pictures(attention_weights, cell_pixels=8):
    """One picture per step: rows regions, columns the 9 sentences.

    Brightness is |weight| / max |weight| of the region (the released
    attention is raw dot products that may be negative).

    Args:
      attention_weights: (B, R, 9, T).

    Returns:
      A list of T uint8 images (B, R * cell_pixels, 9 * cell_pixels, 3).
    """
    weights = np.abs(np.asarray(attention_weights, np.float32))
    weights = weights / np.maximum(weights.max(axis=2, keepdims=True), 1e-9)
    pictures = []
    for step in range(weights.shape[-1]):
        grey = (255 * weights[..., step]).astype(np.uint8)
        grey = np.repeat(np.repeat(grey, cell_pixels, 1), cell_pixels, 2)
        pictures.append(np.repeat(grey[..., None], 3, axis=-1))
    return pictures


def comparison_markdown(results, paper_iou):
    """The text summary: our numbers beside the paper's Table 2 row."""
    paper = "n/a" if paper_iou is None else f"{paper_iou:.4f}"
    return (
        "| metric | ours | paper Table 2 |\n|---|---|---|\n"
        f"| average IoU, 9 shapes + background | "
        f"{results['iou_shapes']:.4f} | {paper} |\n"
        f"| mean IoU, colour classes (released code) | "
        f"{results['miou_colors']:.4f} | n/a |\n"
    )


class EvaluationCallback(keras.callbacks.Callback):
    """Evaluates on the whole test split and writes TensorBoard summaries.

    Every `every_epochs` epochs: both IoUs (added to the epoch logs as
    test_iou_shapes / test_miou_colors), image summaries of input,
    prediction and target for a fixed test batch, one attention picture per
    fusion step, and a text summary beside the paper's number.
    """

    def __init__(
        self,
        test_dataset,
        num_classes,
        log_dir,
        paper_iou=None,
        every_epochs=1,
        num_images=4,
    ):
        super().__init__()
        self.test_dataset = test_dataset
        self.num_classes = num_classes
        self.paper_iou = paper_iou
        self.every_epochs = max(1, int(every_epochs))
        self.num_images = num_images
        self.writer = tf.summary.create_file_writer(log_dir)
        # One whole pass: it fills the test pipeline's in-memory cache and
        # counts the split. Stopping a cached dataset's first pass early
        # (e.g. next(iter(...)) for the sample batch) can leave a truncated
        # cache behind (seen once: 341 of 10,000 images).
        self.sample, self.num_examples = None, 0
        for batch in test_dataset:
            if self.sample is None:
                self.sample = batch
            self.num_examples += int(tf.shape(batch[1]["color_labels"])[0])
        self.last_results = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        results = evaluate_lib.evaluate_model(
            self.model, self.test_dataset, self.num_classes
        )
        self.check_complete(results)
        self.last_results = results
        if logs is not None:
            logs["test_iou_shapes"] = results["iou_shapes"]
            logs["test_miou_colors"] = results["miou_colors"]
        print(
            f"\nepoch {epoch + 1}: test iou_shapes "
            f"{results['iou_shapes']:.4f} (paper {self.paper_iou}), "
            f"miou_colors {results['miou_colors']:.4f} "
            f"on {results['num_examples']} test images; text sensitivity "
            f"{results['text_sensitivity']:.3f}"
        )
        self.write_summaries(epoch + 1, results)

    def check_complete(self, results):
        """Raises if an evaluation read less than the whole test split."""
        if results["num_examples"] != self.num_examples:
            raise RuntimeError(
                f"The evaluation read {results['num_examples']} of the "
                f"{self.num_examples} test images; the test pipeline's cache "
                "is incomplete. Rerun the training (it resumes from the "
                "last checkpoint)."
            )

    def write_summaries(self, step, results):
        inputs, targets = self.sample
        n = self.num_images
        inputs = {key: value[:n] for key, value in inputs.items()}
        outputs = self.model(inputs, training=False)
        predictions = evaluate_lib.predicted_labels(outputs)
        with self.writer.as_default(step=step):
            tf.summary.scalar("iou_shapes", results["iou_shapes"])
            tf.summary.scalar("miou_colors", results["miou_colors"])
            tf.summary.scalar("text_sensitivity", results["text_sensitivity"])
            for step_index, fraction in enumerate(
                results.get("kept_step_fractions", ()), start=1
            ):
                tf.summary.scalar(f"kept_step/{step_index}", fraction)
            tf.summary.image("input", inputs["image"], max_outputs=n)
            tf.summary.image("prediction", colorize(predictions), max_outputs=n)
            tf.summary.image(
                "target",
                colorize(targets["color_labels"][:n]),
                max_outputs=n,
            )
            if "attention_weights" in outputs:
                pictures = attention_pictures(outputs["attention_weights"])
                for index, picture in enumerate(pictures, start=1):
                    tf.summary.image(
                        f"attention/step_{index}", picture, max_outputs=n
                    )
            tf.summary.text(
                "paper_table2", comparison_markdown(results, self.paper_iou)
            )
        self.writer.flush()


def make_loss(config):
    """The loss on the model output that `cosal_models.target_output` names."""
    weight = config.train.foreground_weight
    if cosal_models.target_output(config.model) == "step_logits":
        return cosal_losses.MixtureLikelihoodLoss(
            weight, epsilon=config.model.get("termination_epsilon", 1e-6)
        )
    return cosal_losses.WeightedPixelCrossEntropy(weight)


def learning_rate(config, steps_per_epoch):
    """The configured learning rate: constant, or cosine decay to 0."""
    train = config.train
    schedule = train.get("learning_rate_schedule", "constant")
    if schedule == "constant":
        return train.learning_rate
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            train.learning_rate, max(1, train.epochs * (steps_per_epoch or 1))
        )
    raise ValueError(
        "Argument `learning_rate_schedule` must be 'constant' or 'cosine', "
        f"received: {schedule!r}."
    )


def compile_model(model, config, optimizer=None, steps_per_epoch=None):
    """Adam(lr, beta_1 0.5) and the loss on the target output.

    `steps_per_epoch` sets the length of a decaying learning-rate schedule;
    it is needed unless `optimizer` is given or the rate is constant.
    """
    if optimizer is None:
        schedule = config.train.get("learning_rate_schedule", "constant")
        if steps_per_epoch is None and schedule != "constant":
            raise ValueError(
                "compile_model needs `steps_per_epoch` for the "
                f"{schedule!r} learning-rate schedule, received None; pass "
                "the number of training batches per epoch."
            )
        optimizer = keras.optimizers.Adam(
            learning_rate(config, steps_per_epoch),
            beta_1=config.train.beta_1,
        )
    target_key = cosal_models.target_output(config.model)
    model.compile(
        optimizer=optimizer,
        loss={target_key: make_loss(config)},
        jit_compile=config.train.jit_compile,
    )
    return model


def make_datasets(config):
    """Prepares the builder; returns (train, test, number of train images)."""
    builder = cosal_input.prepare(cosal_input.get_builder(config.data))
    train_examples = cosal_input.num_split_examples(
        builder, "train", config.data.train_examples
    )
    batch_size = min(config.train.batch_size, train_examples)
    train = cosal_input.make_dataset(
        builder,
        "train",
        batch_size,
        training=True,
        num_examples=train_examples,
        shuffle_buffer=config.data.shuffle_buffer,
        seed=config.seed,
    )
    test = cosal_input.make_dataset(
        builder, "test", config.eval.batch_size, training=False
    )
    return train, test, train_examples


def train_and_evaluate(config, workdir):
    """Trains the configured CoSaL model and evaluates it on the test split.

    Writes into `workdir`: config.json (the resolved config), checkpoints/
    (resumed from when present), tensorboard/, model.keras (the final
    model) and eval.json (both IoUs on the whole test split, the paper's
    number, training images, epochs and wall time).

    Returns:
      The content of eval.json.
    """
    start = time.perf_counter()
    workdir = os.path.abspath(os.path.expanduser(workdir))
    # The class count follows the dataset: background + its C colours.
    num_colors = cosal_input.builder_config(config.data).num_colors
    config.model.num_classes = num_colors + 1
    # A config no model accepts fails before anything is written.
    cosal_models.check_model_config(config.model)
    os.makedirs(workdir, exist_ok=True)
    evaluate_lib.write_json(
        os.path.join(workdir, "config.json"), config.to_dict()
    )
    keras.utils.set_random_seed(config.seed)

    train, test, train_examples = make_datasets(config)
    batch_size = min(config.train.batch_size, train_examples)
    target_key = cosal_models.target_output(config.model)
    checkpoint_dir = os.path.join(workdir, "checkpoints")
    initial_epoch, checkpoint = latest_checkpoint(checkpoint_dir)
    if checkpoint:
        print(f"Resuming from {checkpoint} (epoch {initial_epoch}).")
        model = keras.saving.load_model(checkpoint)
        compile_model(model, config, optimizer=model.optimizer)
    else:
        steps_per_epoch = train_examples // batch_size
        model = compile_model(
            cosal_models.build_cosal_model(
                config.model,
                training_steps=config.train.epochs * steps_per_epoch,
            ),
            config,
            steps_per_epoch=steps_per_epoch,
        )

    log_dir = os.path.join(workdir, "tensorboard")
    evaluation = EvaluationCallback(
        test,
        config.model.num_classes,
        os.path.join(log_dir, "test"),
        paper_iou=config.get("paper_iou", None),
        every_epochs=config.train.eval_every_epochs,
        num_images=config.train.num_summary_images,
    )
    callbacks = [
        evaluation,
        keras.callbacks.TensorBoard(
            log_dir, write_graph=False, update_freq="epoch"
        ),
        AtomicCheckpoint(
            checkpoint_dir,
            every_epochs=config.train.checkpoint_every_epochs,
            keep=config.train.keep_checkpoints,
        ),
    ]
    fit_start = time.perf_counter()
    model.fit(
        cosal_input.with_model_targets(train, target_key),
        epochs=config.train.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=config.train.verbose,
    )
    fit_s = time.perf_counter() - fit_start
    save_model_atomically(model, os.path.join(workdir, "model.keras"))

    epochs = config.train.epochs
    if evaluation.last_results is not None and (
        epochs % evaluation.every_epochs == 0 and epochs > initial_epoch
    ):
        results = dict(evaluation.last_results)
    else:
        results = evaluate_lib.evaluate_model(
            model, test, config.model.num_classes
        )
        evaluation.check_complete(results)
        evaluation.write_summaries(epochs, results)
    results.update(evaluate_lib.describe_run(config))
    results.update(
        {
            "split": "test",
            "train_images": train_examples,
            "epochs": epochs,
            "batch_size": batch_size,
            "fit_s": fit_s,
            "wall_s": time.perf_counter() - start,
        }
    )
    evaluate_lib.write_json(os.path.join(workdir, "eval.json"), results)
    return results
