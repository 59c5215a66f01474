"""Tasks: model + data + loss. See :class:`lrscope.data.tasks.base.Task` and :func:`get_task`.

>>> task = get_task("digits")
>>> task.name, task.model_name, task.num_classes
('digits', 'mlp', 10)
"""

from lrscope.data.tasks.base import Task
from lrscope.data.tasks.registry import DEFAULT_TASK, TASKS, check_task_name, get_task, is_user_task
from lrscope.data.tensor_batches import TensorBatches

__all__ = ["DEFAULT_TASK", "TASKS", "Task", "TensorBatches", "check_task_name", "get_task",
           "is_user_task"]
