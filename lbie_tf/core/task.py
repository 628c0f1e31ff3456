"""The seam every experiment is written against: a small registered Task.

In the spirit of TF Model Garden's `official/core/base_task.py`, reduced to
what `model.fit` leaves to us: the core (training, evaluation, export,
serving) calls these methods and knows nothing else about a task.
"""

import dataclasses

_REGISTRY = {}


_LEGACY = []


def register_task(name, legacy=False):
    """Class decorator: registers a Task subclass under `name` (the value of
    `config.task` that selects it). `legacy=True` marks the one task that
    configs and bare .keras files written before `config.task` existed
    belong to."""

    def decorator(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"A task named {name!r} is already registered.")
        cls.name = name
        _REGISTRY[name] = cls
        if legacy and name not in _LEGACY:
            _LEGACY.append(name)
        return cls

    return decorator


def legacy_task_name():
    """The task of configs written before `config.task` existed."""
    if len(_LEGACY) != 1:
        raise ValueError(
            "Exactly one registered task must be the legacy one; found "
            f"{_LEGACY}."
        )
    return _LEGACY[0]


def registered_tasks():
    """The names of every registered task, sorted."""
    return sorted(_REGISTRY)


def get_task_class(name):
    """The Task subclass registered as `name`.

    Raises:
      UsageError: naming the registered tasks.
    """
    from lbie_tf.core import errors

    if name not in _REGISTRY:
        raise errors.UsageError(
            f"`task` must be one of {registered_tasks()}, received: {name!r}."
        )
    return _REGISTRY[name]


def build_task(config):
    """The task that `config.task` names, built from `config`."""
    return get_task_class(config.task)(config)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One SavedModel signature: its name, a tf.function-able callable and
    the input signature (a list of tf.TensorSpec)."""

    name: str
    function: object
    input_signature: list


@dataclasses.dataclass(frozen=True)
class EditExample:
    """An input to try `experiments.edit` on: the image file, its text,
    and lines telling a person what was written."""

    image_path: str
    text: str
    lines: tuple = ()


class Task:
    """Base class of an experiment; subclasses are registered with
    `register_task`.

    `__init__` validates the task's config once (ValueError naming the field)
    and keeps a resolved copy in `self.config`; the given config is never
    mutated.
    """

    name = None

    def __init__(self, config):
        self.config = config

    # === Data ===
    def prepare_data(self):
        """Builds the dataset files if they are missing."""
        raise NotImplementedError

    def num_examples(self, split):
        """How many examples of `split` the run reads."""
        raise NotImplementedError

    def build_inputs(
        self,
        split,
        training,
        batch_size,
        input_context=None,
        first_epoch=0,
        num_epochs=1,
    ):
        """A tf.data pipeline of (inputs, targets) batches.

        For training, the batches of epochs `first_epoch` ..
        `first_epoch + num_epochs - 1` in order, each epoch's order a
        function of the seed and the epoch alone (so that a resumed run
        reads what an uninterrupted one would), and targets keyed by the
        model output the loss reads. `batch_size` is per replica; with an
        `input_context` the pipeline reads only its worker's shard.
        """
        raise NotImplementedError

    # === Model ===
    def register_keras_objects(self):
        """Imports the modules that register the task's Keras layers and
        losses (needed before a saved model of the task loads)."""

    def load_model(self, path):
        """Loads a `.keras` file, workdir or export of this task, with the
        one error translation of `artifacts.load_model`."""
        from lbie_tf.core import artifacts, runtime

        runtime.import_tensorflow_quietly()
        self.register_keras_objects()
        return artifacts.load_model(path, what=f"a {self.name} model")

    def build_model(self, training_steps=None):
        """The keras.Model; `training_steps` is the number of training
        batches it will see (None: a model built only to run)."""
        raise NotImplementedError

    def build_losses(self):
        """{model output name: keras loss} for `compile`."""
        raise NotImplementedError

    def build_metrics(self, training):
        """Metrics for `compile` (whole-split ones come from `evaluate`)."""
        return None

    def build_optimizer(self, steps_per_epoch):
        raise NotImplementedError

    def compile(self, model, steps_per_epoch=None, optimizer=None):
        """Compiles `model` for `fit` (a GAN task overrides this)."""
        model.compile(
            optimizer=optimizer or self.build_optimizer(steps_per_epoch),
            loss=self.build_losses(),
            metrics=self.build_metrics(training=True),
            jit_compile=self.config.train.jit_compile,
        )
        return model

    # === Evaluation ===
    def evaluate(self, model, dataset):
        """Whole-split numbers for eval.json (aggregated, then reduced);
        must include `num_examples`."""
        raise NotImplementedError

    def headline(self, results):
        """One line of the most important numbers, for logs."""
        return ", ".join(
            f"{key} {value:.4f}"
            for key, value in results.items()
            if isinstance(value, float)
        )

    def describe_run(self):
        """What identifies the run in eval.json (paper table coordinates)."""
        return {"task": self.name}

    def write_summaries(self, writer, model, batch, results, step):
        """TensorBoard pictures and the paper-table panel (optional)."""

    # === Export and editing ===
    def build_serving(self, model):
        """The SavedModel endpoints: a list of `Endpoint`, the first being
        `serving_default`, and a list of resources (lookup tables) the
        archive must track."""
        raise NotImplementedError

    def edit(self, model, image, text):
        """What `experiments.edit` and the web page show for one input."""
        raise NotImplementedError

    def edit_files(self, model_path, image_path, text, out_path, options):
        """Edits an image file as `text` says and writes `out_path`; checks
        every input before loading the model. `options` holds the edit
        CLI's optional flags ({name: value}); a task reads those it knows.

        Returns:
          Lines that tell a person what was written.
        """
        raise NotImplementedError

    def serving_examples(self):
        """{signature name: {input name: numpy array}}: one valid request
        per signature (the task checklist and the web page use them)."""
        raise NotImplementedError

    def write_edit_example(self, directory, options=None):
        """Writes an input to try `experiments.edit` on into `directory`
        (`options`: the edit CLI's example flags, {name: value}); returns an
        `EditExample`."""
        raise NotImplementedError

    def explain_serving(self, text, outputs):
        """A picture that explains one `serving_bytes` answer, for the web
        page of `experiments.serve`: uint8 [H, W, 3], or None when there is
        nothing to draw (the default: the task draws no explanation).

        Args:
          text: the request's text (str).
          outputs: that instance's outputs of the signature, {output name:
            numpy value without the batch dimension}, `png_bytes` included.
        """
        return None
