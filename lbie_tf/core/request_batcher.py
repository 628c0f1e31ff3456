"""Merges concurrent calls of one signature into one batched call, as TF
Serving's request batching does, without waiting for more requests."""

import collections
import threading

import numpy as np

# The most instances one merged call holds. A call of a small model's
# bytes signature costs a fixed few milliseconds of graph overhead plus
# well under one per instance (4 ms for one, 0.8 ms per instance at 32,
# for the shipped 48 x 48 model on 2 CPU cores).
MAX_MERGED_INSTANCES = 32


class _Job:
    def __init__(self, signature, inputs, size):
        self.signature = signature
        self.inputs = inputs
        self.size = size
        # Calls whose inputs can share one batch: same signature, same
        # per-instance shapes and dtypes.
        self.key = (
            signature,
            tuple(
                (name, value.shape[1:], value.dtype.str)
                for name, value in sorted(inputs.items())
            ),
        )
        self.done = threading.Event()
        self.outputs = None
        self.error = None


class RequestBatcher:
    """Runs `call(signature, inputs)` of `model` for many threads at once.

    Each call waits in a queue; a worker thread takes the oldest call and
    every waiting call that can join it (up to `max_instances` instances in
    all), concatenates their inputs along axis 0, makes one call of the
    signature and splits the outputs back. Nothing waits for company: a
    call that finds the worker idle runs alone, so batching adds no latency
    and only forms under concurrent load.

    Each call gets what it would get alone, up to float rounding (a batch
    of several instances may take other kernels). If a merged call fails,
    its calls are run one by one, so one bad request cannot fail another;
    if each of them then succeeds, the signature refuses batches of several
    requests (some take one instance a call) and is never merged again.

    Args:
      model: an object with `call(signature, inputs) -> outputs`, both
        {name: numpy array with the instances along axis 0}.
      max_instances: the largest merged batch.
      num_workers: how many merged calls may run at once.
      on_unmergeable: called with a signature name once it is found to
        refuse merged batches (for a log line).
    """

    def __init__(
        self,
        model,
        max_instances=MAX_MERGED_INSTANCES,
        num_workers=1,
        on_unmergeable=None,
    ):
        self.model = model
        self.max_instances = max_instances
        self.on_unmergeable = on_unmergeable
        self._pending = collections.deque()
        self._condition = threading.Condition()
        self._unmergeable = set()
        for index in range(num_workers):
            threading.Thread(
                target=self._work, name=f"request-batcher-{index}", daemon=True
            ).start()

    def call(self, signature, inputs, size):
        """`model.call(signature, inputs)`, batched with other threads'
        calls; `size` is the instance count (axis 0 of every input), or
        None when the inputs do not share one (then the call runs alone).
        Raises what `model.call` raises for these inputs alone."""
        if (
            size is None
            or size >= self.max_instances
            or signature in self._unmergeable
        ):
            return self.model.call(signature, inputs)
        job = _Job(signature, inputs, size)
        with self._condition:
            self._pending.append(job)
            self._condition.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.outputs

    def _take(self):
        """The oldest waiting job and those that can join it."""
        with self._condition:
            while not self._pending:
                self._condition.wait()
            first = self._pending.popleft()
            jobs, size, kept = [first], first.size, []
            while self._pending and size < self.max_instances:
                job = self._pending.popleft()
                if job.key == first.key and size + job.size <= (
                    self.max_instances
                ):
                    jobs.append(job)
                    size += job.size
                else:
                    kept.append(job)
            self._pending.extendleft(reversed(kept))
        return jobs

    def _work(self):
        while True:
            jobs = self._take()
            if len(jobs) == 1 or jobs[0].signature in self._unmergeable:
                for job in jobs:
                    self._run_alone(job)
            else:
                self._run_merged(jobs)

    def _run_alone(self, job):
        try:
            job.outputs = self.model.call(job.signature, job.inputs)
        except Exception as error:  # Raised in the caller's thread.
            job.error = error
        job.done.set()

    def _run_merged(self, jobs):
        signature = jobs[0].signature
        merged = {
            name: np.concatenate([job.inputs[name] for job in jobs])
            for name in jobs[0].inputs
        }
        total = sum(job.size for job in jobs)
        try:
            outputs = self.model.call(signature, merged)
        except Exception:
            for job in jobs:
                self._run_alone(job)
            if all(job.error is None for job in jobs):
                self._unmergeable.add(signature)
                if self.on_unmergeable is not None:
                    self.on_unmergeable(signature)
            return
        if any(
            np.ndim(value) == 0 or np.shape(value)[0] != total
            for value in outputs.values()
        ):
            # Outputs that are not one row per instance cannot be split.
            self._unmergeable.add(signature)
            for job in jobs:
                self._run_alone(job)
            return
        offset = 0
        for job in jobs:
            job.outputs = {
                name: value[offset : offset + job.size]
                for name, value in outputs.items()
            }
            offset += job.size
            job.done.set()
