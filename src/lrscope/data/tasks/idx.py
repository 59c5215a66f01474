"""Reading IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian
uint32 sizes, then the data in C order, big-endian. Anything that does not fit (wrong magic,
a dtype or rank other than expected, too few or too many bytes, a broken gzip stream) is an
:class:`~lrscope.errors.InputError` naming the file, in one line.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from lrscope.errors import InputError

# IDX dtype code -> numpy dtype (big-endian, as the format stores them)
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile reads like one
    return path.open("rb")


def _read_exact(stream: BinaryIO, n: int, path: Path, what: str) -> bytes:
    # In chunks: a corrupt header can claim more bytes than memory (or an index) can hold,
    # and such a file must end as "truncated", not as an OverflowError or MemoryError.
    chunks: list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(min(n - got, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    data = b"".join(chunks)
    if len(data) != n:
        raise InputError(f"{path}: truncated IDX file: expected {n} bytes of {what}, "
                         f"found {len(data)}")
    return data


def read_idx(path: str | Path, limit: int | None = None, ndim: int | None = None) -> np.ndarray:
    """The array stored in IDX file ``path`` (``.gz`` is decompressed on the fly).

    ``limit`` reads only the first ``limit`` items along the first axis (the rest of the file is
    not read, nor checked for length). ``ndim`` checks the rank: 1 for labels, 3 for images.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path, ndim=1).tolist(), read_idx(path, limit=2).tolist()
    ([3, 1, 4], [3, 1])
    """
    path = Path(path)
    try:
        with _open(path) as stream:
            return _read_stream(stream, path, limit, ndim)
    except (OSError, EOFError, zlib.error) as err:
        # A broken gzip stream or an unreadable file: name the file, not the codec's internals.
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise InputError(f"{path}: cannot read IDX file ({reason})") from None


def _read_stream(stream: BinaryIO, path: Path, limit: int | None, ndim: int | None) -> np.ndarray:
    magic = _read_exact(stream, 4, path, "magic number")
    zero, dtype_code, rank = struct.unpack(">HBB", magic)
    if zero != 0 or dtype_code not in DTYPES or rank < 1:
        raise InputError(f"{path}: not an IDX file (magic number 0x{magic.hex()}; expected "
                         "0x0000 followed by a dtype code and the number of dimensions)")
    if ndim is not None and rank != ndim:
        raise InputError(f"{path}: IDX file has {rank} dimensions; expected {ndim} "
                         f"(magic number 0x{magic.hex()})")
    shape = list(struct.unpack(f">{rank}I", _read_exact(stream, 4 * rank, path, "sizes")))
    dtype = DTYPES[dtype_code]
    if limit is not None:
        shape[0] = min(shape[0], limit)
    expected = math.prod(shape) * dtype.itemsize
    data = _read_exact(stream, expected, path, f"data for shape {tuple(shape)}")
    if limit is None and stream.read(1):
        raise InputError(f"{path}: IDX file is longer than its header says (shape "
                         f"{tuple(shape)}, {expected} data bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    Used by tests and by anyone turning their own arrays into an MNIST-format folder.
    """
    path = Path(path)
    codes = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise InputError(f"{path}: IDX cannot store dtype {array.dtype}")
    header = struct.pack(">HBB", 0, codes[native], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as stream:
        stream.write(payload)
