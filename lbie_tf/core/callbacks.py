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

    Backups are written through `artifacts.atomic_path` (a temporary file
    and a rename), so every file named `step-<digits>.keras` is complete;
    the temporary files a killed save leaves behind start with a dot and
    never match.
    """
    best = (0, None)
    for path in glob.glob(os.path.join(backup_dir, "step-*.keras")):
        match = _BACKUP_PATTERN.match(os.path.basename(path))
        if match and int(match.group(1)) > best[0]:
            best = (int(match.group(1)), path)
    return best


def remove_partial_backups(backup_dir):
    """Removes the temporary files of saves that a killed run left in
    `backup_dir` (never resumed from, but as large as a backup)."""
    if not os.path.isdir(backup_dir):
        return
    for name in os.listdir(backup_dir):
        if name.startswith(".") and "step-" in name:
            try:
                os.remove(os.path.join(backup_dir, name))
            except OSError:
                pass


def diverged(what, step, backup_dir):
    """The TrainingDivergedError of a run where `what` happened at `step`,
    naming the newest backup (the last good state)."""
    _, kept = latest_backup(backup_dir)
    return errors.TrainingDivergedError(
        f"Training stopped at step {step}: {what}. The last good backup is "
        f"kept: {kept or 'none yet'}. Lower train.learning_rate and train "
        "into a new --workdir (a rerun in this one resumes from the backup "
        "with the optimizer settings saved in it)."
    )


def _all_finite(variables):
    return all(
        bool(keras.ops.all(keras.ops.isfinite(variable)))
        for variable in variables
    )


class StepBackup(keras.callbacks.Callback):
    """Saves the whole training state every `every_steps` batches and at
    the end of every epoch, so that a killed run resumes exactly.

    A backup is the model as a `.keras` file written by
    `artifacts.save_model`: weights, optimizer state (with its step
    counter) and every SeedGenerator state (which Keras itself does not
    save). The step counter also gives the data position, because the
    training pipeline's order is a function of the seed and the epoch
    alone (`Task.build_inputs`). Only the newest `keep` backups are kept,
    and a state with a NaN or Inf weight is never written: the backup
    before it stays the newest.
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
        step = self._step()
        path = backup_path(self.backup_dir, step)
        if os.path.exists(path):
            return
        # A finite loss does not mean finite weights (an Inf gradient
        # step); a backup must be a state worth resuming from.
        if not _all_finite(self.model.trainable_variables):
            raise diverged("a weight became NaN or Inf", step, self.backup_dir)
        os.makedirs(self.backup_dir, exist_ok=True)
        artifacts.save_model(self.model, path)
        backups = sorted(
            glob.glob(os.path.join(self.backup_dir, "step-*.keras"))
        )
        for old in backups[: -self.keep]:
            os.remove(old)

    def on_train_begin(self, logs=None):
        if self.enabled:
            remove_partial_backups(self.backup_dir)

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps > 0 and self._step() % self.every_steps == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training when the loss is NaN or Inf, naming the step.

    It must come before `StepBackup` in the callback list: Keras calls a
    list's callbacks in order, one after the other (never concurrently, as
    these callbacks define `on_train_batch_end`), so the error raised here
    leaves `fit` before `StepBackup` sees the bad step, and the last good
    backup stays the newest. Raising (rather than `model.stop_training`)
    also skips the epoch-end backup that a stopped epoch would still get.
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = backup_dir

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        step = int(self.model.optimizer.iterations.numpy())
        raise diverged(
            f"the training loss became {float(loss)}", step, self.backup_dir
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
                # Timings are not metrics.
                if isinstance(value, float) and not key.endswith("_s"):
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
