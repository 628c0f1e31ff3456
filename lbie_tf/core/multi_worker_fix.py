"""A workaround, kept in one place, for Keras 3's `fit` under a
MultiWorkerMirroredStrategy of several workers."""

# Upstream: https://github.com/keras-team/keras/issues/20585,
# https://github.com/tensorflow/tensorflow/issues/72388 and, for the dict
# inputs, https://github.com/keras-team/keras/issues/20329. Measured with
# keras 3.15.1 / TF 2.21 (two workers on 127.0.0.1, the CoSaL model),
# `model.fit` fails twice in keras/src/backend/tensorflow/trainer.py:
#
# 1. `TensorFlowTrainer._maybe_symbolic_build` reduces the first batch, a
#    structure of PerReplica values, with `strategy.reduce("MEAN", batch,
#    axis=None)` to get shapes for the symbolic build; the collective
#    strategy cannot reduce a nested dict ("Attempt to convert a value
#    ({'image': PerReplica:{...}, ...}) with an unsupported type (<class
#    'dict'>) to a Tensor"), and it would all-reduce uint8 images to read
#    their shapes.
# 2. `reduce_per_replica(logs, strategy, "auto")`, in its multi-worker
#    branch, calls `strategy.reduce("MEAN", v, axis=0)` on every log of
#    every step, and the logs are scalars (metric results).
#
# The fix is on the model instance, not on Keras' modules: the symbolic
# build reads the first local replica's batch (only its shapes and dtypes
# matter), and `train_step` / `test_step` return each scalar log as a
# one-element vector, so Keras' own `strategy.reduce("MEAN", v, axis=0)`
# averages it over every replica of every worker into a scalar. A replica's
# log is its running mean over equal per-replica batches, so that average is
# the global value, as MirroredStrategy's logs are. Remove this module (and
# its one call in train_lib) when Keras fixes the issues above;
# tests/lbie_tf/core/distribute_test.py::test_keras_multi_worker_bug_is_there
# fails then.

import types

import tensorflow as tf

FIX_ATTRIBUTE = "_lbie_multi_worker_fix"


def needed(strategy):
    """True where Keras takes its broken multi-worker branch: the condition
    of `_collective_all_reduce_multi_worker` in Keras' TF trainer."""
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and bool(strategy.extended._in_multi_worker_mode())


def apply(model, strategy):
    """Makes `model.fit` (and `evaluate`) work under `strategy` when
    `needed(strategy)`; otherwise leaves `model` as it is.

    Idempotent. Call it after `compile` (a load or a compile keeps the
    instance attributes it sets) and before `fit`.

    Returns:
      True when the fix was applied.
    """
    if not needed(strategy):
        return False
    if getattr(model, FIX_ATTRIBUTE, False):
        return True
    train_step, test_step = model.train_step, model.test_step
    model.train_step = lambda data: _as_vectors(train_step(data))
    model.test_step = lambda data: _as_vectors(test_step(data))
    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    setattr(model, FIX_ATTRIBUTE, True)
    return True


def _as_vectors(logs):
    """Scalars as one-element vectors, everything else unchanged."""
    return tf.nest.map_structure(
        lambda value: (
            tf.reshape(value, [1])
            if isinstance(value, tf.Tensor | tf.Variable)
            and value.shape.rank == 0
            else value
        ),
        logs,
    )


def _local_value(value):
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras' `_maybe_symbolic_build`, built from a local batch."""
    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, distributed in iterator:
            data_batch = tf.nest.map_structure(_local_value, next(distributed))
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)
