"""The IDX reader and the MNIST loader, on small IDX files written here (and real MNIST when present).

The files are encoded with ``struct`` from the format's description, independently of
``reference.data``. Nothing here touches the network: downloads go to a ``file://`` mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
import threading
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from reference import data
from reference.data import DataError, load_dataset, parse_idx, read_idx
from tests.idx_files import SHARED_MNIST, idx_bytes, shared_mnist, write_dataset, write_idx


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """No test downloads from the internet, and the user's cache and env var are out of the way."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "cache_dir", lambda dataset: tmp_path / "cache" / dataset)
    monkeypatch.setattr(data.urllib.request, "urlopen", _refuse_remote(data.urllib.request.urlopen))


def _refuse_remote(urlopen):
    def guarded(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"test tried to download {url}")
        return urlopen(url, *args, **kwargs)
    return guarded


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gzip"])
@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([7, 2, 1, 0], dtype=np.uint8),
    np.array([[-300, 2], [5, 1000]], dtype=np.int16),
    np.array([1.5, -2.25], dtype=np.float32),
], ids=["uint8-3d", "uint8-1d", "int16-2d", "float32-1d"])
def test_round_trip(tmp_path, array, suffix):
    got = read_idx(write_idx(tmp_path / f"a{suffix}", array))
    assert got.shape == array.shape and got.dtype == array.dtype, f"got {got.shape} {got.dtype}"
    np.testing.assert_array_equal(got, array)


def test_truncated_data(tmp_path):
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"truncated: header says shape \(3, 28, 28\)"):
        parse_idx(raw[:-1])
    with pytest.raises(DataError, match="trailing bytes"):
        parse_idx(raw + b"\0")
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(raw[:100]))
    with pytest.raises(DataError, match=f"{path}: truncated"):
        read_idx(path)


def test_truncated_header_and_bad_magic():
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataError, match="too short for an IDX header"):
        parse_idx(raw[:3])
    with pytest.raises(DataError, match="truncated header: 3 dims need 16 bytes"):
        parse_idx(raw[:10])
    with pytest.raises(DataError, match="bad magic number 0x01000803"):
        parse_idx(b"\x01" + raw[1:])
    with pytest.raises(DataError, match="bad magic number 0x00000703"):
        parse_idx(raw[:2] + b"\x07" + raw[3:])
    with pytest.raises(DataError, match="magic number 2051, expected 2049"):
        parse_idx(raw, magic=2049)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(50, np.uint8)))[:-6])
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_idx(path)


def idx_header(type_code: int, shape: tuple[int, ...]) -> bytes:
    """An IDX header, 4 + 4 * len(shape) bytes, dims packed as unsigned (any 32-bit pattern)."""
    return struct.pack(">HBB", 0, type_code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def write_bytes(path: Path, raw: bytes) -> Path:
    """``raw`` into ``path``, gzip-compressed when it ends in ``.gz``."""
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)
    return path


def gzip_of_zeros(prefix: bytes, mib: int) -> bytes:
    """A valid .gz of ``prefix`` then ``mib`` MiB of zeros, ~1 KiB per MiB, built from one MiB's deflate blocks
    repeated (they copy zeros at distances the window holds zeros at), without compressing the whole."""
    chunk = bytes(2**20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(prefix + chunk) + deflate.flush(zlib.Z_SYNC_FLUSH)
    again = deflate.compress(chunk) + deflate.flush(zlib.Z_SYNC_FLUSH)
    last = deflate.flush()
    crc = zlib.crc32(prefix + chunk)
    for _ in range(mib - 1):
        crc = zlib.crc32(chunk, crc)
    size = len(prefix) + mib * len(chunk)
    member_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return member_header + first + again * (mib - 1) + last + struct.pack("<II", crc, size & 0xFFFFFFFF)


def test_gzip_of_zeros_is_valid():
    assert gzip.decompress(gzip_of_zeros(b"abc", 3)) == b"abc" + bytes(3 * 2**20)


def at(path: Path, where: str = "read_idx") -> str:
    """The start of a message about ``path``, as a regex: ``read_idx: <path>: ``."""
    return re.escape(f"{where}: {path}: ")


def peak_traced_bytes(call) -> int:
    """Peak Python memory (bytes, tracemalloc) while ``call()`` runs; its exception propagates."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("layout", ["members", "many-members", "zero-padding", "empty-member-after"])
def test_gzip_members_and_padding(tmp_path, layout):
    """Concatenated members (as bgzip writes them) and zero padding after a member read as :mod:`gzip` reads them."""
    array = np.arange(1000, dtype=np.int32).reshape(10, 100)
    raw = idx_bytes(array)
    packed = {
        "members": gzip.compress(raw[:7]) + bytes(10) + gzip.compress(raw[7:]),
        "many-members": b"".join(gzip.compress(raw[i:i + 100]) for i in range(0, len(raw), 100)),
        "zero-padding": gzip.compress(raw) + bytes(5000),
        "empty-member-after": gzip.compress(raw) + gzip.compress(b""),
    }[layout]
    path = tmp_path / "x.gz"
    path.write_bytes(packed)
    np.testing.assert_array_equal(read_idx(path), array)


def test_corrupt_deflate_stream(tmp_path):
    """A reserved block type (BTYPE 11) in the first deflate block: zlib's "invalid block type"."""
    packed = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)), mtime=0))
    packed[10] |= 0b110  # the deflate data starts after gzip's 10-byte header; bits 1-2 are BTYPE
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=at(path) + r"not a valid gzip file .*invalid block type"):
        read_idx(path)


def test_corrupt_file_through_load_dataset(tmp_path):
    write_dataset(tmp_path / "d")
    path = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    packed = bytearray(path.read_bytes())
    packed[10] |= 0b110
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=at(path) + r"not a valid gzip file"):
        load_dataset("mnist", tmp_path / "d")


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gzip"])
@pytest.mark.parametrize("type_code, shape", [(0x08, (2**16,) * 4), (0x0B, (2**31 - 1,) * 3)],
                         ids=["uint8-2^64", "int16-(2^31-1)^3"])
def test_overflowing_dims(tmp_path, suffix, type_code, shape):
    """Dims whose product wraps int64 (2^64 = 0 mod 2^64) with no data: rejected on the header alone."""
    path = write_bytes(tmp_path / f"x{suffix}", idx_header(type_code, shape))
    with pytest.raises(DataError, match=at(path) + r"too large: .*overflow int64 "
                                                 rf"\(expected at most {data.MAX_PAYLOAD_BYTES} bytes"):
        read_idx(path)


def test_size_limit(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"too large: header says shape \(3, 28, 28\) of uint8, 2352 bytes, "
                                        r"more than the limit \(expected at most 2351 bytes, got 2352\)"):
        read_idx(path, max_bytes=2351)
    assert read_idx(path, max_bytes=2352).shape == (3, 28, 28)


NDIM = r"bad ndim \(expected 1 to 32 dimensions, got {}\)"
NOT_POSITIVE = r"dimension {} is not positive \(expected 1 to 2147483647, got {}\)"


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gzip"])
@pytest.mark.parametrize("header, problem", [
    (b"\x00\x00\x08\x00", r"bad magic number 0x00000800: " + NDIM.format(0)),
    (idx_header(0x08, (1,) * 100) + b"\x05", r"bad magic number 0x00000864: " + NDIM.format(100)),
    (idx_header(0x07, (1,)) + b"\x05", r"bad magic number 0x00000701: unknown type byte \(expected one of .*, got 0x7"),
    (idx_header(0x08, (3, 0, 2)), r"header shape \(3, 0, 2\): " + NOT_POSITIVE.format(1, 0)),
    (idx_header(0x08, (2**32 - 1,)) + b"\x05", r"header shape \(-1,\): " + NOT_POSITIVE.format(0, -1)),
], ids=["ndim-0", "ndim-100", "type-0x07", "dim-0", "dim-negative"])
def test_bad_header(tmp_path, suffix, header, problem):
    path = write_bytes(tmp_path / f"x{suffix}", header)
    with pytest.raises(DataError, match=at(path) + problem):
        read_idx(path)


def test_gzip_bomb_fails_fast(tmp_path):
    """A one-element header then 200 MiB of zeros in ~200 KB of .gz: rejected after reading 1 byte past the
    declared data, with well under 200 MiB of memory."""
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip_of_zeros(idx_header(0x08, (1,)) + b"\x07", 200))
    assert path.stat().st_size < 300_000

    def read():
        with pytest.raises(DataError, match=at(path) + r"has trailing bytes: header says shape \(1,\) "
                                                     r"of uint8 \(expected 9 bytes with the header, got at least 10\)"):
            read_idx(path)

    assert peak_traced_bytes(read) < 16 * 2**20


def test_compression_ratio(tmp_path):
    """A ~40-byte .gz whose header declares 100 MB: more than deflate can expand, rejected before any data."""
    path = write_bytes(tmp_path / "x.gz", idx_header(0x08, (100, 1000, 1000)) + bytes(10))
    size = path.stat().st_size
    problem = (rf"compression ratio exceeded: header says shape \(100, 1000, 1000\) of uint8, 100000016 bytes with "
               rf"the header, from a {size}-byte .gz file; deflate expands at most 1032x, so the header lies or the "
               rf"file is cut short \(expected at most {1032 * size} bytes, got 100000016\)")
    with pytest.raises(DataError, match=at(path) + problem):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gzip"])
@pytest.mark.parametrize("cut, problem", [
    (0, r"too short for an IDX header \(expected at least 4 bytes, got 0\)"),
    (3, r"too short for an IDX header \(expected at least 4 bytes, got 3\)"),
    (10, r"truncated header: 3 dims need 16 bytes \(expected 16 bytes, got 10\)"),
    (16, r"truncated: header says shape \(3, 28, 28\) of uint8 \(expected 2368 bytes with the header, got 16\)"),
    (2367, r"truncated: header says shape \(3, 28, 28\) of uint8 \(expected 2368 bytes with the header, got 2367\)"),
], ids=["empty", "in-magic", "in-dims", "no-data", "one-byte-short"])
def test_truncated_file(tmp_path, suffix, cut, problem):
    raw = idx_bytes(np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28))
    path = write_bytes(tmp_path / f"x{suffix}", raw[:cut])
    with pytest.raises(DataError, match=at(path) + problem):
        read_idx(path)


@pytest.mark.parametrize("suffix, got", [("", "got 2370"), (".gz", "got at least 2369")], ids=["raw", "gzip"])
def test_trailing_data(tmp_path, suffix, got):
    path = write_bytes(tmp_path / f"x{suffix}", idx_bytes(np.ones((3, 28, 28), np.uint8)) + b"\x00\x01")
    problem = (r"has trailing bytes: header says shape \(3, 28, 28\) of uint8 "
               rf"\(expected 2368 bytes with the header, {got}\)")
    with pytest.raises(DataError, match=at(path) + problem):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gzip"])
@pytest.mark.parametrize("declared, problem", [
    ((4, 28, 28), r"truncated: header says shape \(4, 28, 28\) of uint8 \(expected 3152 bytes with the header, "),
    ((3, 28, 27), r"has trailing bytes: header says shape \(3, 28, 27\) of uint8 \(expected 2284 bytes with the "),
    ((1,), r"has trailing bytes: header says shape \(1,\) of uint8 \(expected 9 bytes with the header, got "),
], ids=["more", "fewer", "one"])
def test_lying_header(tmp_path, suffix, declared, problem):
    """The data of shape (3, 28, 28) (2352 bytes) under a header declaring another shape."""
    raw = idx_header(0x08, declared) + np.ones((3, 28, 28), np.uint8).tobytes()
    path = write_bytes(tmp_path / f"x{suffix}", raw)
    with pytest.raises(DataError, match=at(path) + problem):
        read_idx(path)


def test_unreadable_paths(tmp_path):
    with pytest.raises(DataError, match=at(tmp_path) + r"cannot read the file \(Is a directory\)"):
        read_idx(tmp_path)
    missing = tmp_path / "missing.gz"
    with pytest.raises(DataError, match=at(missing) + r"cannot read the file \(No such file or directory\)"):
        read_idx(missing)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros(4, np.uint8))
    path.chmod(0)
    with pytest.raises(DataError, match=at(path) + r"cannot read the file \(Permission denied\)"):
        read_idx(path)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc/self/mem")
def test_read_error():
    """/proc/self/mem opens but reading at offset 0 fails (EIO)."""
    with pytest.raises(DataError, match="read_idx: /proc/self/mem: cannot read the file"):
        read_idx("/proc/self/mem")


def feed_fifo(path: Path, payload: bytes) -> threading.Thread:
    """Write ``payload`` into the FIFO at ``path`` from a thread (the reader may stop early)."""
    def write():
        try:
            with path.open("wb") as fifo:
                fifo.write(payload)
        except BrokenPipeError:
            pass
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gzip"])
def test_fifo(tmp_path, suffix):
    """A pipe has no size to check up front: the data is streamed and checked as it comes."""
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    raw = idx_bytes(array)
    for payload, problem in [(raw, None), (raw[:-1], "truncated"), (raw + b"\x00", "has trailing bytes")]:
        path = tmp_path / f"pipe{suffix}"
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        thread = feed_fifo(path, gzip.compress(payload) if suffix else payload)
        if problem is None:
            np.testing.assert_array_equal(read_idx(path), array)
        else:
            with pytest.raises(DataError, match=at(path) + rf"{problem}: header says shape \(2, 3, 4\)"):
                read_idx(path)
        thread.join(timeout=10)


def test_read_bytes_is_bounded(tmp_path):
    path = tmp_path / "zeros.gz"
    path.write_bytes(gzip_of_zeros(b"", 8))
    with pytest.raises(DataError, match=at(path, "read_bytes") + rf"too large \(expected at most {2**20} bytes"):
        data.read_bytes(path, max_bytes=2**20)
    assert data.read_bytes(path) == bytes(8 * 2**20)


def test_labels_out_of_range(tmp_path):
    arrays = write_dataset(tmp_path / "d")
    labels = arrays["test_labels"].copy()
    labels[3] = 10
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError, match=r"test labels out of range \(expected 0 to 9, got 10 at index 3\)"):
        load_dataset("mnist", tmp_path / "d")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_load_dataset_from_data_dir(tmp_path, gz):
    arrays = write_dataset(tmp_path / "d", gz=gz)
    ds = load_dataset("mnist", tmp_path / "d")
    for key, value in arrays.items():
        np.testing.assert_array_equal(getattr(ds, key), value, err_msg=key)
    assert ds.directory == tmp_path / "d"


def test_env_var_then_cache(tmp_path, monkeypatch):
    env_arrays = write_dataset(tmp_path / "env", seed=1)
    cache_arrays = write_dataset(tmp_path / "cache" / "fashion-mnist", seed=2)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    np.testing.assert_array_equal(load_dataset("fashion-mnist").train_labels, env_arrays["train_labels"])
    monkeypatch.delenv(data.ENV_VAR)
    np.testing.assert_array_equal(load_dataset("fashion-mnist").train_labels, cache_arrays["train_labels"])


def test_missing_files_name_the_folders(tmp_path):
    write_dataset(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=f"not found in {tmp_path / 'd'}; check the folder given"):
        load_dataset("mnist", tmp_path / "d")
    with pytest.raises(DataError, match="cache.*; pass --data-dir or set CNNREF_DATA_DIR"):
        load_dataset("mnist", download_missing=False)


def test_swapped_files_are_rejected(tmp_path):
    arrays = write_dataset(tmp_path / "d")
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", arrays["train_images"])
    with pytest.raises(DataError, match="magic number 2051, expected 2049"):
        load_dataset("mnist", tmp_path / "d")
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", arrays["train_labels"][:-1])
    with pytest.raises(DataError, match="do not pair up"):
        load_dataset("mnist", tmp_path / "d")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("cifar10")


def _local_source(mirror: Path, kind: str) -> data.Source:
    md5 = {}
    for stem in data.FILES.values():
        payload = (mirror / (stem + ".gz")).read_bytes()
        md5[stem] = (kind, hashlib.md5(payload if kind == "gz" else gzip.decompress(payload)).hexdigest())
    return data.Source(mirrors=(mirror.as_uri() + "/",), md5=md5)


@pytest.mark.parametrize("kind", ["gz", "raw"])
def test_download_verifies_and_caches(tmp_path, monkeypatch, kind):
    arrays = write_dataset(tmp_path / "mirror")
    monkeypatch.setitem(data.SOURCES, "mnist", _local_source(tmp_path / "mirror", kind))
    ds = load_dataset("mnist")
    assert ds.directory == tmp_path / "cache" / "mnist"
    np.testing.assert_array_equal(ds.test_images, arrays["test_images"])
    assert sorted(p.name for p in ds.directory.iterdir()) == sorted(s + ".gz" for s in data.FILES.values())


def test_download_rejects_a_wrong_checksum(tmp_path, monkeypatch):
    write_dataset(tmp_path / "mirror")
    source = _local_source(tmp_path / "mirror", "gz")
    source.md5["train-labels-idx1-ubyte"] = ("gz", "0" * 32)
    monkeypatch.setitem(data.SOURCES, "mnist", source)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz failed from every mirror.*md5"):
        load_dataset("mnist")
    assert not (tmp_path / "cache" / "mnist" / "train-labels-idx1-ubyte.gz").exists()


@pytest.mark.mnist
def test_real_mnist():
    """Counts and first labels as listed in ../shared/data/mnist/README.md, and its md5s."""
    if shared_mnist() is None:
        pytest.skip(f"real MNIST not found at {SHARED_MNIST} (the shared data folder)")
    ds = load_dataset("mnist", SHARED_MNIST)
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert ds.train_images.dtype == np.uint8
    assert np.bincount(ds.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(ds.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    for stem in data.FILES.values():
        data.verify_md5(SHARED_MNIST / (stem + ".gz"), "mnist")
