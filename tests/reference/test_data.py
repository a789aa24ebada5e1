"""The IDX reader and the MNIST loader, on small IDX files written here (and real MNIST when present).

The files are encoded with ``struct`` from the format's description, independently of
``reference.data``. Nothing here touches the network: downloads go to a ``file://`` mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from reference import data
from reference.data import DataError, load_dataset, parse_idx, read_idx

SHARED_MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"
TYPE_CODES = {np.uint8: 0x08, np.int16: 0x0B, np.float32: 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    code = TYPE_CODES[array.dtype.type]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_dataset(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in data.FILES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key])
    return arrays


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
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST.resolve()} (the shared data folder)")
    ds = load_dataset("mnist", SHARED_MNIST)
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert ds.train_images.dtype == np.uint8
    assert np.bincount(ds.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(ds.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    for stem in data.FILES.values():
        data.verify_md5(SHARED_MNIST / (stem + ".gz"), "mnist")
