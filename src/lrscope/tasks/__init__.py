"""Tasks: model + data + loss. See lrscope.tasks.base.Task."""
