"""MNIST-format tasks: ``fashion-mnist`` and ``mnist`` from a folder of four IDX files.

The folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or ``.gz``. Fashion-MNIST is
found at ``/usr/share/datasets/fashion-mnist`` when Debian's ``dataset-fashion-mnist`` is
installed; MNIST has no such package, so it needs ``--data-dir``. Nothing is downloaded.
Images are scaled to [0, 1] and shaped ``(N, 1, 28, 28)``; the model is LeNet-5 (or ``mlp``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lrscope.data.tasks.base import Task
from lrscope.data.tasks.idx import read_idx
from lrscope.data.tasks.models import lenet5, mlp
from lrscope.errors import InputError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# "lenet" is accepted too, so `--model lenet` means the LeNet of whichever task is chosen.
MODELS: dict[str, Callable[[], nn.Module]] = {
    "lenet5": lenet5, "lenet": lenet5, "mlp": partial(mlp, in_features=28 * 28)}
DEFAULT_MODEL = "lenet5"
DEFAULT_BATCH_SIZE = 128
NUM_CLASSES = 10
_FILE_LIST = ", ".join(FILES.values())


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists (raw first), else None."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _how_to_get(name: str) -> str:
    if name == "fashion-mnist":
        return ("install Debian's package (apt-get install dataset-fashion-mnist) or pass "
                f"--data-dir DIR holding {_FILE_LIST} (raw or .gz)")
    return f"pass --data-dir DIR holding {_FILE_LIST} (raw or .gz)"


def _resolve_dir(name: str, data_dir: str | Path | None) -> Path:
    if data_dir is None:
        if name == "fashion-mnist":
            return FASHION_MNIST_DIR
        raise InputError(f"task {name}: no data folder given; {_how_to_get(name)}")
    return Path(data_dir).expanduser()


def _load_pair(images_path: Path, labels_path: Path,
               limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(images_path, limit=limit, ndim=3)
    labels = read_idx(labels_path, limit=limit, ndim=1)
    if images.shape[1:] != (28, 28):
        raise InputError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}; "
                         "MNIST-format tasks expect 28x28")
    if len(images) != len(labels):
        raise InputError(f"{labels_path}: {len(labels)} labels for {len(images)} images in "
                         f"{images_path.name}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise InputError(f"{labels_path}: labels must lie in 0..{NUM_CLASSES - 1}; found "
                         f"{int(labels.min())}..{int(labels.max())}")
    x = torch.from_numpy((images.astype(np.float32) / 255.0)[:, None, :, :])
    return x, torch.from_numpy(labels.astype(np.int64))


def idx_task(name: str, model: str = DEFAULT_MODEL, data_dir: str | Path | None = None,
             limit_train: int | None = None, limit_test: int | None = None) -> Task:
    """The ``name`` task (``fashion-mnist`` or ``mnist``) from the IDX files in ``data_dir``.

    ``limit_train`` / ``limit_test`` read only the first N examples of each file, so a quick
    run or a CI test never decompresses the whole dataset.
    """
    folder = _resolve_dir(name, data_dir)
    if not folder.is_dir():
        raise InputError(f"task {name}: data folder {folder} does not exist; {_how_to_get(name)}")
    paths = {key: find_idx_file(folder, stem) for key, stem in FILES.items()}
    missing = [FILES[key] for key, path in paths.items() if path is None]
    if missing:
        raise InputError(f"task {name}: {folder} lacks {', '.join(missing)} (raw or .gz); "
                         f"{_how_to_get(name)}")
    found = {key: path for key, path in paths.items() if path is not None}
    train_x, train_y = _load_pair(found["train_images"], found["train_labels"], limit_train)
    test_x, test_y = _load_pair(found["test_images"], found["test_labels"], limit_test)
    return Task(
        name=name,
        make_model=MODELS[model],
        train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
        batch_size=DEFAULT_BATCH_SIZE,
        num_classes=NUM_CLASSES,
        description=f"{name} IDX files from {folder}",
        model_name=model,
    )
