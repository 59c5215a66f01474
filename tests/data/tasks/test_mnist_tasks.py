"""fashion-mnist and mnist from IDX folders: Debian's real files, folders written here, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lrscope.data.tasks import get_task
from lrscope.data.tasks.idx import write_idx
from lrscope.data.tasks.mnist import FASHION_MNIST_DIR, FILES
from lrscope.errors import InputError


def test_fashion_mnist_loads_from_debian_package() -> None:
    # CI installs dataset-fashion-mnist (scripts/setup-venv.sh test); this must not skip.
    task = get_task("fashion-mnist", limit_train=300, limit_test=200)
    assert FASHION_MNIST_DIR.is_dir()
    assert task.train_x.shape == (300, 1, 28, 28) and task.test_x.shape == (200, 1, 28, 28)
    assert task.train_x.dtype == torch.float32
    assert float(task.train_x.min()) >= 0.0 and float(task.train_x.max()) == 1.0
    assert set(task.train_y.tolist()) == set(range(10))
    assert task.batch_size == 128 and task.model_name == "lenet5" and task.num_classes == 10
    torch.manual_seed(0)
    model = task.make_model()
    assert model(task.train_x[:5]).shape == (5, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (6, (5, 5), (2, 2)), (16, (5, 5), (0, 0))]
    assert [(m.in_features, m.out_features) for m in linears] == [(400, 120), (120, 84), (84, 10)]


def test_fashion_mnist_first_labels_are_the_files(tmp_path: Path) -> None:
    # The well-known first training labels of Fashion-MNIST: ankle boot, T-shirt, T-shirt, dress.
    task = get_task("fashion-mnist", limit_train=4, limit_test=1)
    assert task.train_y.tolist() == [9, 0, 0, 3]


def _write_folder(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = False) -> None:
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}",
                  rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}",
                  (np.arange(n) % 10).astype(np.uint8))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_a_folder(tmp_path: Path, gz: bool) -> None:
    _write_folder(tmp_path, gz=gz)
    task = get_task("mnist", data_dir=tmp_path, batch_size=8)
    assert task.train_x.shape == (20, 1, 28, 28) and task.test_y.tolist() == list(range(10))
    assert task.batch_size == 8 and task.steps_per_epoch == 3
    assert get_task("mnist", data_dir=tmp_path, model="mlp").make_model()(task.test_x).shape \
        == (10, 10)


def _one_line(excinfo: pytest.ExceptionInfo[InputError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_missing_folder_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        get_task("fashion-mnist", data_dir=tmp_path / "nowhere")
    message = _one_line(info)
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert all(name in message for name in FILES.values())


def test_folder_without_files_names_the_missing_ones(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(InputError) as info:
        get_task("mnist", data_dir=tmp_path)
    message = _one_line(info)
    assert "lacks t10k-labels-idx1-ubyte" in message and "train-images" not in message.split(
        "lacks")[1].split(";")[0]


def test_mnist_without_data_dir_is_one_line() -> None:
    with pytest.raises(InputError) as info:
        get_task("mnist")
    assert "--data-dir" in _one_line(info)


def test_corrupt_file_is_named(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(InputError) as info:
        get_task("mnist", data_dir=tmp_path)
    assert str(bad) in _one_line(info)


def test_label_count_mismatch_is_named(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(19, dtype=np.uint8))
    with pytest.raises(InputError) as info:
        get_task("mnist", data_dir=tmp_path)
    assert "19 labels for 20 images" in _one_line(info)


def test_wrong_image_size_is_named(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 8, 8), dtype=np.uint8))
    with pytest.raises(InputError) as info:
        get_task("mnist", data_dir=tmp_path)
    assert "8x8" in _one_line(info) and "t10k-images" in str(info.value)
