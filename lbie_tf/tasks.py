"""Imports every task wing, so that each registers its Task and layers.

Entry points import this module once; the core finds tasks by name in the
registry (`lbie_tf.core.task`) and never imports a wing itself.
"""

from lbie_tf.core import task as task_lib  # noqa: E402
from lbie_tf.cosal import task as cosal_task  # noqa: F401
from lbie_tf.flowers import task as flowers_task  # noqa: F401
from lbie_tf.referit import task as referit_task  # noqa: F401

# The registered task names, for --help texts.
NAMES = task_lib.registered_tasks()
