"""Trains any registered task: strategy scope, model.fit, exact resume,
chief-only artefacts."""

import os
import sys
import time

import keras
import tensorflow as tf

from lbie_tf.core import (
    artifacts,
    callbacks,
    distribute,
    errors,
    multi_worker_fix,
)
from lbie_tf.core import task as task_lib

BACKUP_DIR_NAME = "backup"
TENSORBOARD_DIR_NAME = "tensorboard"


def train_dataset(task, strategy, batch_size, first_epoch, num_epochs, skip):
    """The training batches from `first_epoch` on, the first `skip` global
    steps left out (a resumed run's position), distributed by `strategy`.

    `batch_size` is the global batch; each replica gets an equal share.
    """

    def dataset_fn(input_context):
        per_replica = input_context.get_per_replica_batch_size(batch_size)
        dataset = task.build_inputs(
            "train",
            training=True,
            batch_size=per_replica,
            input_context=input_context,
            first_epoch=first_epoch,
            num_epochs=num_epochs,
        )
        return dataset.skip(skip) if skip else dataset

    if strategy.num_replicas_in_sync == 1 and not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        return dataset_fn(tf.distribute.InputContext())
    return strategy.distribute_datasets_from_function(dataset_fn)


def epoch_metrics(workdir):
    """The epoch logs of a run as its TensorBoard callback wrote them
    (<workdir>/tensorboard/train, every event file, so the pieces of a
    resumed run too): {name: {epoch: value}}, names without Keras'
    "epoch_" prefix, epochs counted from 1. An epoch logged twice keeps
    the later value."""
    from tensorflow.core.util import event_pb2

    pattern = os.path.join(
        os.fspath(workdir), TENSORBOARD_DIR_NAME, "train", "events.out.*"
    )
    logged = []
    for path in tf.io.gfile.glob(pattern):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    number = float(tf.make_ndarray(value.tensor))
                    logged.append(
                        (event.wall_time, value.tag, event.step, number)
                    )
    metrics = {}
    for _, tag, step, number in sorted(logged):
        metrics.setdefault(tag.removeprefix("epoch_"), {})[step + 1] = number
    return {
        name: dict(sorted(values.items())) for name, values in metrics.items()
    }


def fit_verbosity(verbose):
    """Keras' verbosity for `fit`: a progress bar (1) only on a terminal;
    redirected to a file or pipe it becomes one plain line per epoch (2)."""
    if verbose == 1 and not sys.stdout.isatty():
        return 2
    return verbose


def global_batch_size(config, train_examples, strategy):
    """The configured global batch, at most the training split, and a
    multiple of the replica count (each replica gets an equal share).

    Raises:
      UsageError: if `train.batch_size` is not a multiple of the replica
        count (rounding it would change the batch the learning rate was
        chosen for without saying so; BUILD.md has the rule).
    """
    replicas = strategy.num_replicas_in_sync
    if config.train.batch_size % replicas:
        nearest = sorted(
            {
                max(replicas, config.train.batch_size // replicas * replicas),
                (config.train.batch_size // replicas + 1) * replicas,
            }
        )
        raise errors.UsageError(
            f"`train.batch_size={config.train.batch_size}` is the global "
            f"batch, split equally over {replicas} replicas; pass a "
            f"multiple of {replicas} (e.g. "
            f"{' or '.join(map(str, nearest))})."
        )
    batch_size = min(config.train.batch_size, train_examples)
    batch_size -= batch_size % replicas
    if batch_size < replicas:
        raise ValueError(
            f"`train.batch_size` ({config.train.batch_size}) must be at "
            f"least the number of replicas ({replicas})."
        )
    return batch_size


def _build_or_resume(task, backup_dir, steps_per_epoch, total_steps):
    step, backup = callbacks.latest_backup(backup_dir)
    if backup:
        print(f"Resuming from {backup} (step {step}).", flush=True)
        task.register_keras_objects()
        model = keras.saving.load_model(backup)
        # Keras leaves SeedGenerator states out of the archive; without
        # them a Gumbel gate would redraw its noise from the start.
        artifacts.restore_seed_generators(model, backup)
        task.compile(model, steps_per_epoch, optimizer=model.optimizer)
        return model, int(model.optimizer.iterations.numpy())
    model = task.build_model(training_steps=total_steps)
    task.compile(model, steps_per_epoch)
    return model, 0


def train_and_evaluate(config, workdir):
    """Trains the task `config.task` names and evaluates it on its test
    split.

    Writes into `workdir` (the chief only): config.json (the resolved
    config), backup/ (the newest training states; a rerun resumes from
    them exactly), tensorboard/, model.keras and eval.json (the task's
    whole-split numbers, the run's coordinates, training images, epochs and
    wall time). With `runtime.deterministic` and a fixed seed, a run killed
    at any moment and rerun ends with the same weights as an uninterrupted
    one.

    Returns:
      The content of eval.json.
    """
    start = time.perf_counter()
    task = task_lib.build_task(config)
    config = task.config
    runtime = config.runtime
    strategy = distribute.make_strategy(
        runtime.strategy, runtime.num_cpu_devices
    )
    distribute.check_jit_compile(strategy, config.train.jit_compile)
    chief = distribute.is_chief(strategy)
    if chief:
        workdir = artifacts.prepare_workdir(workdir)
    # The other workers resume from copies of the chief's backups.
    out_dir = distribute.worker_dir(workdir, chief, copy=(BACKUP_DIR_NAME,))
    try:
        return _train(task, config, strategy, out_dir, start)
    finally:
        distribute.remove_worker_dir(out_dir, chief)


def _train(task, config, strategy, workdir, start):
    artifacts.write_json(
        os.path.join(workdir, artifacts.CONFIG_FILE_NAME), config.to_dict()
    )
    keras.utils.set_random_seed(config.seed)
    if config.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()

    task.prepare_data()
    train_examples = task.num_examples("train")
    batch_size = global_batch_size(config, train_examples, strategy)
    steps_per_epoch = train_examples // batch_size
    epochs = config.train.epochs
    total_steps = epochs * steps_per_epoch
    backup_dir = os.path.join(workdir, BACKUP_DIR_NAME)
    # Again: building the dataset files (only in a run that finds them
    # missing) draws from the global generators, and the model must not
    # start from a state that depends on whether it did.
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model, step = _build_or_resume(
            task, backup_dir, steps_per_epoch, total_steps
        )
    distribute.check_same_on_all_workers(strategy, step, "the resume step")
    # Keras' fit breaks under several MWMS workers (the module says why).
    multi_worker_fix.apply(model, strategy)

    log_dir = os.path.join(workdir, TENSORBOARD_DIR_NAME)
    test = task.build_inputs(
        "test", training=False, batch_size=config.eval.batch_size
    )
    evaluation = callbacks.EvaluationCallback(
        task,
        test,
        os.path.join(log_dir, "test"),
        every_epochs=config.train.eval_every_epochs,
    )
    fit_callbacks = [
        callbacks.StopOnNonFiniteLoss(backup_dir),
        callbacks.StepBackup(
            backup_dir,
            every_steps=config.train.backup_every_steps,
            keep=config.train.keep_checkpoints,
        ),
        evaluation,
        keras.callbacks.TensorBoard(
            log_dir, write_graph=False, update_freq="epoch"
        ),
    ]
    verbose = fit_verbosity(config.train.verbose)
    fit_start = time.perf_counter()
    epoch, skip = divmod(step, steps_per_epoch)
    if skip:
        # The rest of the interrupted epoch, then the later epochs: fit's
        # epochs keep their boundaries and the batches their order.
        model.fit(
            train_dataset(task, strategy, batch_size, epoch, 1, skip),
            initial_epoch=epoch,
            epochs=epoch + 1,
            steps_per_epoch=steps_per_epoch - skip,
            callbacks=fit_callbacks,
            verbose=verbose,
        )
        epoch += 1
    if epoch < epochs:
        model.fit(
            train_dataset(task, strategy, batch_size, epoch, epochs - epoch, 0),
            initial_epoch=epoch,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=fit_callbacks,
            verbose=verbose,
        )
    fit_s = time.perf_counter() - fit_start
    artifacts.save_model(
        model, os.path.join(workdir, artifacts.MODEL_FILE_NAME)
    )

    if evaluation.last_epoch == epochs:
        results = dict(evaluation.last_results)
    else:
        # A rerun of a finished run calls no fit, which sets the model.
        evaluation.set_model(model)
        results = dict(evaluation.evaluate(epochs))
    results.update(task.describe_run())
    results.update(
        {
            "split": "test",
            "train_images": train_examples,
            "epochs": epochs,
            "batch_size": batch_size,
            "replicas": strategy.num_replicas_in_sync,
            "strategy": config.runtime.strategy,
            "fit_s": fit_s,
            "wall_s": time.perf_counter() - start,
        }
    )
    artifacts.write_json(
        os.path.join(workdir, artifacts.EVAL_FILE_NAME), results
    )
    return results
