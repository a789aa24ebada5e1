"""Corrupt IDX files, raw and ``.gz``: :func:`read_idx` returns exactly what the (possibly corrupted) header
declares, or raises :class:`DataError`, never another exception; a well-formed file is always accepted.

Valid files are written here with ``struct`` from the format's description, then corrupted: bit flips, bytes
overwritten, appended or cut off at random offsets, headers rewritten with random type bytes, ndims and dims
(from 0 to 2^32 - 1). For ``.gz``, the raw bytes are corrupted and compressed (as 1 to 3 members), then the
compressed bytes are corrupted in turn; :func:`gzip.decompress` tells what the file holds when it decodes at all.
The bounds on work and memory are tested in ``test_data.py`` (a gzip bomb, a lying header).
"""

from __future__ import annotations

import gzip
import math
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.data import DataError, parse_idx, read_idx

# IDX type byte -> big-endian numpy dtype, from the format's description.
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
VALID = (
    np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
    np.array([[-300, 2], [5, 1000]], dtype=">i2"),
    np.array([1.5, -2.25, 3.0], dtype=">f4"),
    np.arange(6, dtype=">f8").reshape(3, 2, 1),
    np.zeros((4, 5), dtype=np.int8),
)
CODES = {np.dtype(code): type_code for type_code, code in DTYPES.items()}
DIMS = st.integers(0, 8) | st.sampled_from([2**16, 2**31 - 1, 2**31, 2**32 - 1]) | st.integers(0, 2**32 - 1)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX file of ``array``: header (4 + 4 * ndim bytes), then the data big-endian in C order."""
    big = array.astype(array.dtype.newbyteorder(">"))
    header = struct.pack(">HBB", 0, CODES[big.dtype], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + big.tobytes()


@st.composite
def rewritten_header(draw, raw: bytes) -> bytes:
    """``raw`` with its header replaced: any type byte (known or not), ndim 0..6 with dims up to 2^32 - 1, or
    an absurd ndim (33, 65, 255) either with random first 6 dims then 1s, or with all 1s over one item."""
    type_code = draw(st.sampled_from([*DTYPES, 0x00, 0x07, 0xFF]))
    ndim = draw(st.integers(0, 6) | st.sampled_from([33, 65, 255]))
    dims = draw(st.lists(DIMS, min_size=min(ndim, 6), max_size=min(ndim, 6))) + [1] * max(ndim - 6, 0)
    old = 4 + 4 * raw[3] if len(raw) >= 4 else len(raw)
    data = raw[old:]
    if ndim > 6 and draw(st.booleans()):
        dims, data = [1] * ndim, data[:np.dtype(DTYPES.get(type_code, ">u1")).itemsize]
    return struct.pack(">HBB", 0, type_code, ndim) + struct.pack(f">{ndim}I", *dims) + data


@st.composite
def damaged(draw, raw: bytes, rewrite: bool) -> bytes:
    """``raw`` after 0 to 3 random edits: a bit flipped, a byte overwritten, bytes appended, the end cut off at a
    random offset, or (when ``rewrite``) the header rewritten."""
    edits = ["flip", "overwrite", "append", "cut"] + (["header"] * 2 if rewrite else [])
    out = bytearray(raw)
    for edit in draw(st.lists(st.sampled_from(edits), max_size=3)):
        if edit == "header":
            out = bytearray(draw(rewritten_header(bytes(out))))
        elif edit == "append":
            out += draw(st.binary(min_size=1, max_size=16) | st.just(bytes(64)) | st.just(gzip.compress(b"x", mtime=0)))
        elif out and edit == "cut":
            del out[draw(st.integers(0, len(out) - 1)):]
        elif out and edit == "flip":
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif out and edit == "overwrite":
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out)


def well_formed(idx: bytes, magic: int | None) -> bool:
    """Whether ``idx`` is an IDX file by the format's description: ``00 00``, a known type byte, 1 to 32 dims
    (numpy's limit, the reader's), each dim a positive int32, exactly the declared data after the header,
    and the magic number ``magic`` when given."""
    if len(idx) < 4 or idx[:2] != b"\0\0" or idx[2] not in DTYPES or not 1 <= idx[3] <= 32:
        return False
    ndim = idx[3]
    if len(idx) < 4 + 4 * ndim or (magic is not None and int.from_bytes(idx[:4], "big") != magic):
        return False
    dims = struct.unpack(f">{ndim}i", idx[4:4 + 4 * ndim])
    return min(dims) >= 1 and len(idx) == 4 + 4 * ndim + math.prod(dims) * np.dtype(DTYPES[idx[2]]).itemsize


def check_result(got: np.ndarray, idx: bytes) -> None:
    """``got`` is what the IDX bytes ``idx`` declare: header's shape and dtype, every data byte, nothing more."""
    ndim = idx[3]
    shape = struct.unpack(f">{ndim}I", idx[4:4 + 4 * ndim])
    dtype = np.dtype(DTYPES[idx[2]])
    assert got.shape == shape, f"shape {got.shape}, header says {shape}"
    assert got.dtype == dtype.newbyteorder("="), f"dtype {got.dtype}, header says {dtype}"
    assert 4 + 4 * ndim + got.nbytes == len(idx), f"{got.nbytes} data bytes from {len(idx)} bytes"
    assert (got.byteswap() if sys.byteorder == "little" else got).tobytes() == idx[4 + 4 * ndim:]


def read_or_reject(path: Path, magic: int | None) -> np.ndarray | None:
    """``read_idx(path)``, or None when it raises :class:`DataError` (any other exception propagates)."""
    try:
        return read_idx(path, magic)
    except DataError as exc:
        assert str(exc).startswith(f"read_idx: {path}: "), str(exc)
        return None


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corrupt")


MAGICS = st.sampled_from([None, 2051, 2049])  # each file is read without a magic number, then with this one


@settings(max_examples=200, deadline=None)
@given(source=st.sampled_from(VALID).flatmap(lambda a: damaged(idx_bytes(a), rewrite=True)), magic=MAGICS)
def test_corrupt_raw_file(folder, source, magic):
    """read_idx and parse_idx accept exactly the well-formed files, and return what their header declares."""
    path = folder / "raw-idx-ubyte"
    path.write_bytes(source)
    for want in dict.fromkeys((None, magic)):
        got = read_or_reject(path, want)
        assert (got is not None) == well_formed(source, want), "accepts a malformed file or rejects a valid one"
        try:
            parsed = parse_idx(source, magic=want)
        except DataError:
            parsed = None
        assert (parsed is None) == (got is None), "read_idx and parse_idx disagree"
        if got is not None:
            check_result(got, source)
            np.testing.assert_array_equal(parsed, got)


@st.composite
def corrupt_gzip(draw) -> tuple[bytes, bool]:
    """(.gz bytes, whether the compressed bytes are intact): a valid IDX file, damaged (or not), compressed as
    1 to 3 members (split at random offsets, maybe zero padding after each), then damaged again (or not)."""
    source = draw(st.sampled_from(VALID).flatmap(lambda a: damaged(idx_bytes(a), rewrite=True)))
    cuts = sorted(draw(st.lists(st.integers(0, len(source)), max_size=2)))
    level = draw(st.sampled_from([1, 9]))
    members = [gzip.compress(source[start:end], compresslevel=level, mtime=0) + bytes(draw(st.sampled_from([0, 0, 3])))
               for start, end in zip([0, *cuts], [*cuts, len(source)], strict=True)]
    packed = b"".join(members)
    damaged_packed = draw(damaged(packed, rewrite=False))
    return damaged_packed, damaged_packed == packed


def gunzip(packed: bytes) -> bytes | None:
    """What :mod:`gzip` decodes from ``packed``; None when it cannot."""
    try:
        return gzip.decompress(packed)
    except (OSError, EOFError, zlib.error):
        return None


@settings(max_examples=200, deadline=None)
@given(case=corrupt_gzip(), magic=MAGICS)
def test_corrupt_gzip_file(folder, case, magic):
    """read_idx returns what the decompressed header declares, or raises DataError; intact .gz files of
    well-formed IDX data are accepted (zlib checks gzip's reserved flags and header CRC, :mod:`gzip` does
    not: damaged .gz files that only :mod:`gzip` decodes may be rejected)."""
    packed, intact = case
    path = folder / "idx-ubyte.gz"
    path.write_bytes(packed)
    idx = gunzip(packed)
    for want in dict.fromkeys((None, magic)):
        got = read_or_reject(path, want)
        if got is not None:
            assert idx is not None, "read_idx accepted a .gz that gzip.decompress rejects"
            assert well_formed(idx, want), "read_idx accepted a malformed file"
            check_result(got, idx)
        elif intact:
            assert not well_formed(idx, want), "read_idx rejected an intact .gz of a well-formed file"
