"""Tasks: model + data + loss. See :class:`lrscope.tasks.base.Task` and :func:`get_task`.

>>> task = get_task("digits")
>>> task.name, task.model_name, task.num_classes
('digits', 'mlp', 10)
"""

from lrscope.tasks.base import Task
from lrscope.tasks.batches import TensorBatches
from lrscope.tasks.registry import DEFAULT_TASK, TASKS, check_task_name, get_task, is_user_task

__all__ = ["DEFAULT_TASK", "TASKS", "Task", "TensorBatches", "check_task_name", "get_task",
           "is_user_task"]
