"""Callbacks the core adds to every `fit`: evaluation, backups, NaN stop."""

import glob
import math
import os
import re

import keras
import tensorflow as tf

from lbie_tf.core import artifacts, errors

_BACKUP_PATTERN = re.compile(r"^step-(\d+)\.keras$")


def backup_path(backup_dir, step):
    return os.path.join(backup_dir, f"step-{int(step):08d}.keras")


def latest_backup(backup_dir):
    """(step, path) of the newest complete backup, or (0, None).

    Backups are written through a temporary file and a rename, so every
    file matching the pattern is complete.
    """
    best = (0, None)
    for path in glob.glob(os.path.join(backup_dir, "step-*.keras")):
        match = _BACKUP_PATTERN.match(os.path.basename(path))
        if match and int(match.group(1)) > best[0]:
            best = (int(match.group(1)), path)
    return best


class StepBackup(keras.callbacks.Callback):
    """Saves the whole training state every `every_steps` batches and at
    the end of every epoch, so that a killed run resumes exactly.

    A backup is the model as a `.keras` file: weights, optimizer state
    (with its step counter) and every SeedGenerator state (they are model
    variables). The step counter also gives the data position, because the
    training pipeline's order is a function of the seed and the epoch
    alone (`Task.build_inputs`). Only the newest `keep` backups are kept.
    """

    def __init__(self, backup_dir, every_steps, keep=2, enabled=True):
        super().__init__()
        self.backup_dir = backup_dir
        self.every_steps = int(every_steps)
        self.keep = max(1, int(keep))
        self.enabled = enabled

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def save(self):
        if not self.enabled:
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        step = self._step()
        path = backup_path(self.backup_dir, step)
        if os.path.exists(path):
            return
        artifacts.save_model(self.model, path)
        backups = sorted(
            glob.glob(os.path.join(self.backup_dir, "step-*.keras"))
        )
        for old in backups[: -self.keep]:
            os.remove(old)

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps > 0 and self._step() % self.every_steps == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training when the loss is NaN or Inf, naming the step.

    It must come before `StepBackup` in the callback list, so that the bad
    step is never backed up; the last good backup stays.
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = backup_dir

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        step = int(self.model.optimizer.iterations.numpy())
        _, kept = latest_backup(self.backup_dir)
        raise errors.TrainingDivergedError(
            f"The training loss became {float(loss)} at step {step}; "
            f"stopped. The last good backup is kept: {kept or 'none yet'}. "
            "Lower train.learning_rate, or rerun to resume from the backup."
        )


class EvaluationCallback(keras.callbacks.Callback):
    """Evaluates on the whole test split every few epochs (task.evaluate)
    and writes TensorBoard summaries (task.write_summaries).

    The numbers are added to the epoch logs with a `test_` prefix.
    """

    def __init__(
        self, task, test_dataset, log_dir, every_epochs=1, enabled=True
    ):
        super().__init__()
        self.task = task
        self.test_dataset = test_dataset
        self.every_epochs = max(1, int(every_epochs))
        self.enabled = enabled
        self.writer = tf.summary.create_file_writer(log_dir)
        # One whole pass: it fills the test pipeline's in-memory cache and
        # counts the split. Stopping a cached dataset's first pass early
        # (e.g. next(iter(...)) for the sample batch) can leave a truncated
        # cache behind (seen once: 341 of 10,000 images).
        self.sample, self.num_examples = None, 0
        for batch in test_dataset:
            if self.sample is None:
                self.sample = batch
            self.num_examples += int(tf.shape(tf.nest.flatten(batch)[0])[0])
        self.last_results = None
        self.last_epoch = None

    def evaluate(self, epoch):
        results = self.task.evaluate(self.model, self.test_dataset)
        self.check_complete(results)
        self.last_results, self.last_epoch = results, epoch
        if self.enabled:
            self.task.write_summaries(
                self.writer, self.model, self.sample, results, epoch
            )
            self.writer.flush()
        return results

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        results = self.evaluate(epoch + 1)
        if logs is not None:
            for key, value in results.items():
                if isinstance(value, float):
                    logs[f"test_{key}"] = value
        print(
            f"\nepoch {epoch + 1}: test {self.task.headline(results)} on "
            f"{results['num_examples']} test examples",
            flush=True,
        )

    def check_complete(self, results):
        """Raises if an evaluation read less than the whole test split."""
        if results["num_examples"] != self.num_examples:
            raise RuntimeError(
                f"The evaluation read {results['num_examples']} of the "
                f"{self.num_examples} test examples; the test pipeline's "
                "cache is incomplete. Rerun the training (it resumes from "
                "the last backup)."
            )
