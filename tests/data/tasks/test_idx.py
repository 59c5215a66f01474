"""The IDX reader on small files written here, raw and gzip, good and broken."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscope.data.tasks.idx import read_idx, write_idx
from lrscope.errors import InputError


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_images_and_labels(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / f"img{suffix}", ndim=3), images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"lab{suffix}", ndim=1), labels)
    np.testing.assert_array_equal(read_idx(tmp_path / f"img{suffix}", limit=3), images[:3])


def test_header_bytes_follow_the_format(tmp_path: Path) -> None:
    # Hand-written file: magic 0x00000801 (ubyte, 1 dim), size 3, data.
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 6, 7]))
    assert read_idx(path).tolist() == [5, 6, 7]


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       dtype=st.sampled_from(["uint8", "int8", "int16", "int32", "float32", "float64"]))
def test_round_trip_any_dtype_and_rank(tmp_path_factory: pytest.TempPathFactory,
                                       shape: list[int], dtype: str) -> None:
    array = (np.arange(int(np.prod(shape))) % 100).astype(dtype).reshape(shape)
    path = tmp_path_factory.mktemp("idx") / "a.gz"
    write_idx(path, array)
    out = read_idx(path)
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def _error(path: Path, **kwargs: object) -> str:
    with pytest.raises(InputError) as info:
        read_idx(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_bad_magic_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x50\x4b\x03\x04" + bytes(20))  # a zip file, say
    assert "not an IDX file" in _error(path)


def test_wrong_rank_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    write_idx(path, np.zeros((2, 2), dtype=np.uint8))
    assert "expected 1" in _error(path, ndim=1)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_data_names_the_file(tmp_path: Path, suffix: str) -> None:
    full = tmp_path / "full"
    write_idx(full, np.zeros((4, 3, 3), dtype=np.uint8))
    cut = tmp_path / f"cut{suffix}"
    data = full.read_bytes()[:-5]
    cut.write_bytes(gzip.compress(data) if suffix else data)
    assert "truncated" in _error(cut)


def test_trailing_bytes_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "long"
    write_idx(path, np.zeros(3, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    assert "longer than its header" in _error(path)


def test_broken_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip data at all")
    assert "cannot read IDX file" in _error(path)


def test_unreadable_path_names_the_file(tmp_path: Path) -> None:
    assert "cannot read" in _error(tmp_path / "missing")
