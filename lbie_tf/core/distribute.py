"""tf.distribute strategies from `config.runtime`, and who is the chief."""

import os
import shutil
import tempfile

import tensorflow as tf

from lbie_tf.core import errors

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(strategy_name, num_cpu_devices=0):
    """The tf.distribute strategy `config.runtime.strategy` names.

    Args:
      strategy_name: "default" (one device), "mirrored" (MirroredStrategy
        over the visible GPUs, or over `num_cpu_devices` logical CPU devices
        when there is no GPU) or "multi_worker" (MultiWorkerMirroredStrategy
        across the hosts that TF_CONFIG lists).
      num_cpu_devices: logical CPU devices to split the CPU into for
        "mirrored" without GPUs (0: one device). It must be set before
        TensorFlow has run any op.

    Raises:
      UsageError: for an unknown name.
    """
    if strategy_name not in STRATEGIES:
        raise errors.UsageError(
            f"`runtime.strategy` must be one of {list(STRATEGIES)}, "
            f"received: {strategy_name!r}."
        )
    if strategy_name == "default":
        return tf.distribute.get_strategy()
    if num_cpu_devices and not tf.config.list_physical_devices("GPU"):
        split_cpu(num_cpu_devices)
    if strategy_name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    return tf.distribute.MultiWorkerMirroredStrategy()


def split_cpu(num_devices):
    """Splits the first CPU into `num_devices` logical devices (for tests
    and CPU runs of the Mirrored strategy); a no-op when it already is."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu,
            [tf.config.LogicalDeviceConfiguration()] * int(num_devices),
        )
    except RuntimeError:
        raise errors.UsageError(
            f"`runtime.num_cpu_devices={num_devices}` must be set before "
            "TensorFlow starts; TensorFlow was already running in this "
            "process. Run training in a fresh process."
        ) from None


def is_chief(strategy):
    """True for the one worker that writes artefacts.

    Under MultiWorkerMirroredStrategy that is the task of type "chief", or
    worker 0 when the cluster has no chief; every other strategy runs in one
    process, which is the chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    cluster = resolver.cluster_spec().as_dict()
    return (
        "chief" not in cluster
        and resolver.task_type == "worker"
        and resolver.task_id == 0
    )


def worker_dir(workdir, chief, copy=()):
    """Where this worker writes: the workdir for the chief, a temporary
    directory for the others (removed by `remove_worker_dir`).

    Every worker runs the same callbacks (saving a model and writing epoch
    summaries read metric variables through collective ops, in which every
    worker must take part); the others' copies go to the temporary
    directory, so that only the chief's land in the workdir.

    Args:
      workdir: the run's directory (the chief's; on a shared file system
        the others read it).
      chief: `is_chief(strategy)`.
      copy: entries of `workdir` a non-chief worker starts with (the
        backups, so that every worker resumes from the step the chief
        resumes from); copied, never written in the workdir.
    """
    if chief:
        return workdir
    directory = tempfile.mkdtemp(prefix="lbie-worker-")
    for name in copy:
        source = os.path.join(os.path.expanduser(workdir), name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(directory, name))
    return directory


def remove_worker_dir(directory, chief):
    if not chief:
        shutil.rmtree(directory, ignore_errors=True)


def check_same_on_all_workers(strategy, value, what):
    """Raises unless every worker of a multi-worker strategy has the same
    integer `value` (a collective op: every worker must call it).

    Workers that disagree on, say, the step they resume from would run
    different numbers of collective steps and hang.

    Raises:
      UsageError: naming `what` and every worker's value.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    if strategy.num_replicas_in_sync == 1:
        return
    values = strategy.gather(
        strategy.run(lambda: tf.constant([int(value)], tf.int64)), axis=0
    )
    values = [int(v) for v in values.numpy()]
    if len(set(values)) > 1:
        raise errors.UsageError(
            f"The workers disagree on {what} (one value per replica: "
            f"{values}). Every worker must read the chief's workdir: pass "
            "the same --workdir on a file system that every host mounts."
        )


def check_jit_compile(strategy, jit_compile):
    """Raises where `train.jit_compile=True` cannot work with `strategy`.

    Keras compiles the whole cross-replica step (`strategy.run` and the
    gradient all-reduce) as one XLA cluster. Measured with keras 3.15.1 /
    TF 2.21: one replica per process works (the default strategy, or
    "mirrored" over one device); MirroredStrategy over two devices fails
    ("Trying to access resource conv1/kernel/replica_1 located in device
    CPU:1 from device CPU:0": an XLA cluster runs on one device,
    https://www.tensorflow.org/xla/known_issues); two
    MultiWorkerMirroredStrategy workers fail ("Collectives are not yet
    implemented for CPU devices when compiling with XLA"; on GPUs untested,
    so refused as well).

    Raises:
      UsageError: naming the combination and what works instead.
    """
    if not jit_compile or strategy.num_replicas_in_sync == 1:
        return
    name = (
        "multi_worker"
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        else "mirrored"
    )
    raise errors.UsageError(
        f"`train.jit_compile=True` does not work with "
        f"`runtime.strategy={name}` over {strategy.num_replicas_in_sync} "
        "replicas (Keras compiles the cross-replica step as one XLA "
        "cluster, which cannot span devices or workers); use "
        "`train.jit_compile=False` with it, or jit_compile with one device."
    )
