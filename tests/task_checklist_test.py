"""Every registered task passes the task checklist."""

import pytest

from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import task as task_lib
from tests.task_checklist import run_task_checklist


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("task_name", task_lib.registered_tasks())
def test_task_passes_the_checklist(task_name, tmp_path):
    run_task_checklist(task_name, tmp_path)
