"""MNIST and Fashion-MNIST from their IDX files (gzip-compressed or raw).

IDX: a big-endian header ``0x00 0x00 dtype ndim`` (MNIST's magic numbers 2051 for
images, 2049 for labels: dtype 0x08 = uint8, 3 or 1 dims), then one big-endian int32
per dimension, then the data in C order. :func:`read_idx` checks all of it.

Where the files are looked for, first hit wins: ``data_dir``, the environment variable
``CNNREF_DATA_DIR``, ``~/.cache/cnnref/<dataset>`` (then, for Fashion-MNIST, Debian's
``/usr/share/datasets/fashion-mnist``). When none holds them and ``download=True``,
they are fetched from public mirrors into the cache folder and verified by md5.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "CNNREF_DATA_DIR"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MAGIC = {"images": 2051, "labels": 2049}  # uint8 with 3 dims, uint8 with 1 dim
# IDX type byte -> numpy dtype (big-endian where it matters).
IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from: mirrors, md5 per file (of the ``.gz`` or of the raw bytes)."""

    mirrors: tuple[str, ...]
    md5: dict[str, tuple[str, str]]  # file stem -> ("gz" | "raw", md5 hex)
    system_dirs: tuple[str, ...] = ()


SOURCES = {
    "mnist": Source(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        md5={"train-images-idx3-ubyte": ("raw", "6bbc9ace898e44ae57da46a324031adb"),
             "train-labels-idx1-ubyte": ("raw", "a25bea736e30d166cdddb491f175f624"),
             "t10k-images-idx3-ubyte": ("raw", "2646ac647ad5339dbf082846283269ea"),
             "t10k-labels-idx1-ubyte": ("raw", "27ae3e4e09519cfbb04c329615203637")},
    ),
    "fashion-mnist": Source(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={"train-images-idx3-ubyte": ("gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
             "train-labels-idx1-ubyte": ("gz", "25c81989df183df01b3e8a0aad5dffbe"),
             "t10k-images-idx3-ubyte": ("gz", "bef4ecab320f06d8554ea6380940ec79"),
             "t10k-labels-idx1-ubyte": ("gz", "bb300cfdad3c16e7a12a480ee83cd310")},
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}
DATASETS = tuple(SOURCES)


class DataError(ValueError):
    """A data file is missing, truncated or not what it claims to be; the message names the file."""


@dataclass(frozen=True)
class Dataset:
    """``train_images (60000, 28, 28) uint8``, ``train_labels (60000,) uint8``, the same for test."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path


def parse_idx(data: bytes, where: str = "IDX data", magic: int | None = None) -> np.ndarray:
    """IDX bytes -> ndarray of the header's shape and dtype; raises :class:`DataError` when malformed
    or, given ``magic``, when the header's magic number differs (2051 images, 2049 labels)."""
    if len(data) < 4:
        raise DataError(f"{where}: {len(data)} bytes, too short for an IDX header (4 bytes at least)")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{where}: bad magic number 0x{data[:4].hex()} (expected 00 00, a type byte in "
                        f"{[hex(t) for t in IDX_DTYPES]}, then ndim >= 1; MNIST images 0x00000803 = 2051, "
                        f"labels 0x00000801 = 2049)")
    if magic is not None and int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"{where}: magic number {int.from_bytes(data[:4], 'big')}, expected {magic}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{where}: truncated header: {ndim} dims need {header} bytes, file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{where}: {state}: header says shape {shape} of {dtype.name} ({expected} bytes with "
                        f"the header), file has {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in ``.gz``; a corrupt gzip raises :class:`DataError`."""
    raw = Path(path).read_bytes()
    if Path(path).suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc})") from exc


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an ndarray, checking header, length and ``magic``."""
    return parse_idx(read_bytes(Path(path)), str(path), magic)


def find_file(directory: Path, stem: str) -> Path | None:
    """``directory/stem`` or ``directory/stem.gz``, whichever exists (raw first)."""
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def cache_dir(dataset: str) -> Path:
    return Path.home() / ".cache" / "cnnref" / dataset


def candidate_dirs(dataset: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """Folders searched in order: ``data_dir`` alone when given, else env var, cache, system folders."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    env = os.environ.get(ENV_VAR)
    dirs = [Path(env).expanduser()] if env else []
    return dirs + [cache_dir(dataset)] + [Path(d) for d in SOURCES[dataset].system_dirs]


def verify_md5(path: Path, dataset: str) -> None:
    """Raise :class:`DataError` unless ``path`` has the md5 published for it."""
    stem = path.name.removesuffix(".gz")
    kind, want = SOURCES[dataset].md5[stem]
    data = path.read_bytes() if kind == "gz" else read_bytes(path)
    got = hashlib.md5(data).hexdigest()
    if got != want:
        raise DataError(f"{path}: md5 of the {'gzip' if kind == 'gz' else 'uncompressed'} bytes is {got}, "
                        f"expected {want}")


def download(dataset: str, directory: Path, timeout: float = 60.0) -> None:
    """Fetch the four ``.gz`` files into ``directory`` from the first mirror that answers; md5-checked."""
    directory.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        if find_file(directory, stem):
            continue
        target, errors = directory / (stem + ".gz"), []
        for mirror in SOURCES[dataset].mirrors:
            part = target.with_suffix(".gz.part")
            try:
                with urllib.request.urlopen(mirror + target.name, timeout=timeout) as response:
                    part.write_bytes(response.read())
                part.rename(target)
                verify_md5(target, dataset)
                break
            except (OSError, DataError) as exc:
                errors.append(f"{mirror}: {exc}")
                part.unlink(missing_ok=True)
                target.unlink(missing_ok=True)
        else:
            raise DataError(f"download {dataset} {target.name} failed from every mirror: " + "; ".join(errors))


def load_dataset(dataset: str = "mnist", data_dir: str | os.PathLike | None = None,
                 download_missing: bool = True) -> Dataset:
    """Load the train and test splits of ``dataset`` (``mnist`` or ``fashion-mnist``).

    Raises :class:`DataError` naming every folder searched when the files are absent
    (and ``download_missing`` is False or ``data_dir`` was given), or when a file is corrupt.
    """
    if dataset not in SOURCES:
        raise ValueError(f"load_dataset: dataset must be one of {DATASETS}, got {dataset!r}")
    dirs = candidate_dirs(dataset, data_dir)
    found = next((d for d in dirs if all(find_file(d, s) for s in FILES.values())), None)
    if found is None and download_missing and data_dir is None:
        found = cache_dir(dataset)
        download(dataset, found)
    if found is None:
        raise DataError(f"load_dataset: {dataset} files ({', '.join(FILES.values())}, raw or .gz) not found in "
                        f"{', '.join(map(str, dirs))}; "
                        + ("check the folder given" if data_dir is not None else f"pass --data-dir or set {ENV_VAR}"))
    arrays = {key: read_idx(find_file(found, stem), MAGIC[key.split("_")[1]]) for key, stem in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"load_dataset: {found} {split} images {images.shape} and labels {labels.shape} do "
                            f"not pair up (expected (N, H, W) and (N,))")
    return Dataset(dataset, directory=found, **arrays)
