"""tf.distribute strategies from `config.runtime`, and who is the chief."""

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


def worker_dir(workdir, chief):
    """Where this worker writes: the workdir for the chief, a temporary
    directory for the others (removed by `remove_worker_dir`)."""
    if chief:
        return workdir
    return tempfile.mkdtemp(prefix="lbie-worker-")


def remove_worker_dir(directory, chief):
    if not chief:
        shutil.rmtree(directory, ignore_errors=True)
