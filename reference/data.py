"""MNIST and Fashion-MNIST from their IDX files (gzip-compressed or raw).

IDX: a big-endian header ``0x00 0x00 dtype ndim`` (MNIST's magic numbers 2051 for
images, 2049 for labels: dtype 0x08 = uint8, 3 or 1 dims), then one big-endian int32
per dimension, then the data in C order. :func:`read_idx` checks all of it, and any
corrupt, truncated or hostile file raises :class:`DataError` naming it, after bounded
work: the header is checked first (at most ``MAX_NDIM`` dims, each at least 1, at most
``MAX_PAYLOAD_BYTES`` of data, a ``.gz`` expanding at most ``MAX_GZIP_RATIO`` times), then
exactly the declared bytes are read (decompressed a chunk at a time), then one more to
reject trailing data.

Where the files are looked for, first hit wins: ``data_dir``, the environment variable
``CNNREF_DATA_DIR``, ``~/.cache/cnnref/<dataset>`` (then, for Fashion-MNIST, Debian's
``/usr/share/datasets/fashion-mnist``). When none holds them and ``download=True``,
they are fetched from public mirrors into the cache folder and verified by md5.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import struct
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .validation import check_bool, check_choice

ENV_VAR = "CNNREF_DATA_DIR"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MAGIC = {"images": 2051, "labels": 2049}  # uint8 with 3 dims, uint8 with 1 dim
NUM_CLASSES = 10  # MNIST's digits and Fashion-MNIST's garments: labels 0..9
# IDX type byte -> numpy dtype (big-endian where it matters).
IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# Bounds checked on the header before any data is read, so a corrupt or hostile file costs bounded work.
# Data bytes one file may declare: 2 GiB (MNIST's largest file holds 47 MB); read_idx(max_bytes=...) overrides.
MAX_PAYLOAD_BYTES = 2**31
# Dimensions one file may declare: numpy 1 arrays hold at most 32 (numpy 2: 64); MNIST's files have 1 or 3.
MAX_NDIM = 32
MAX_HEADER_BYTES = 4 + 4 * MAX_NDIM
# Deflate's maximum expansion is 1032:1 (a 258-byte match coded in 2 bits), gzip's framing only lowers it:
# a .gz whose header declares more than 1032x the file's size lies (or the file is cut short).
MAX_GZIP_RATIO = 1032
# Read and decompress this much at a time: memory beyond the result stays ~2 chunks.
CHUNK_BYTES = 2**20
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib.decompressobj: a gzip member (header, deflate, CRC-32 and size checked)


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


@dataclass(frozen=True)
class IdxHeader:
    """An IDX header: its first 4 bytes as a big-endian ``magic`` int, the element ``dtype``, the ``shape``."""

    magic: int
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Header bytes: 4, then 4 per dimension."""
        return 4 + 4 * len(self.shape)

    @property
    def payload(self) -> int:
        """Data bytes the header declares: product of the shape times the item size (a Python int, exact)."""
        return math.prod(self.shape) * self.dtype.itemsize

    def describe(self) -> str:
        """``shape (60000, 28, 28) of uint8``, for messages."""
        return f"shape {self.shape} of {self.dtype.name}"


class GunzipStream:
    """``read(n)`` over the decompressed bytes of a ``.gz`` file object (its members concatenated, zero
    padding after a member skipped, as :mod:`gzip` does).

    Each call decompresses at most ``n`` bytes (zlib's ``max_length``) from compressed chunks of at most
    ``CHUNK_BYTES``, so work and memory follow what is read, never the file's full decompressed size.
    Corrupt data raises ``zlib.error``, a member cut short ``EOFError``.
    """

    def __init__(self, file: BinaryIO):
        self.file = file
        self.inflater = None  # the current member's zlib decompressor; None before the first
        self.pending = b""  # compressed bytes read from the file, not yet given to the decompressor

    def read(self, size: int) -> bytes:
        """Up to ``size`` decompressed bytes: exactly ``size`` unless the data ends first (``b""`` at the end)."""
        parts, left = [], size
        while left > 0 and self._more():
            part = self.inflater.decompress(self.pending, left)
            # at a member's end zlib leaves what follows in both attributes: take it once
            self.pending = self.inflater.unused_data if self.inflater.eof else self.inflater.unconsumed_tail
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def _more(self) -> bool:
        """Whether compressed input is pending for a member: reads the next chunk when none is, starts the
        next member after one ends; False at the end of the file."""
        if self.inflater is not None and not self.inflater.eof:
            self.pending = self.pending or self.file.read(CHUNK_BYTES)
            if not self.pending:
                raise EOFError("the compressed data ends before its end-of-stream marker")
            return True
        if self.inflater is not None:
            self._skip_zero_padding()
        self.pending = self.pending or self.file.read(CHUNK_BYTES)
        if not self.pending:
            return False
        self.inflater = zlib.decompressobj(GZIP_WBITS)
        return True

    def _skip_zero_padding(self) -> None:
        """Drop the zero bytes that may follow a member (C-speed, a chunk at a time)."""
        while True:
            chunk = self.pending or self.file.read(CHUNK_BYTES)
            self.pending = chunk.lstrip(b"\0")
            if self.pending or not chunk:
                return


@contextmanager
def reading(where: str) -> Iterator[None]:
    """Turn what opening, reading or gunzipping a file raises into :class:`DataError` naming ``where``."""
    try:
        yield
    except (zlib.error, EOFError) as exc:
        raise DataError(f"{where}: not a valid gzip file ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{where}: cannot read the file ({exc.strerror or exc})") from exc


def regular_size(file: BinaryIO) -> int | None:
    """The size in bytes of an open regular file; None for a pipe, a device and the like."""
    status = os.fstat(file.fileno())
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def check_magic(first: bytes, where: str, magic: int | None) -> tuple[int, int]:
    """The 4 magic bytes -> (type code, ndim); :class:`DataError` unless ``00 00 type ndim`` with a known
    type and 1 <= ndim <= ``MAX_NDIM``, or, given ``magic``, when the magic number differs."""
    zero, type_code, ndim = int.from_bytes(first[:2], "big"), first[2], first[3]
    bad = f"{where}: bad magic number 0x{first.hex()}"
    if zero != 0:
        raise DataError(f"{bad} (expected 00 00, a type byte in {[hex(t) for t in IDX_DTYPES]}, then ndim >= 1; "
                        f"MNIST images 0x00000803 = 2051, labels 0x00000801 = 2049)")
    if type_code not in IDX_DTYPES:
        raise DataError(f"{bad}: unknown type byte (expected one of {[hex(t) for t in IDX_DTYPES]}, "
                        f"got {hex(type_code)})")
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(f"{bad}: bad ndim (expected 1 to {MAX_NDIM} dimensions, got {ndim})")
    if magic is not None and int.from_bytes(first, "big") != magic:
        raise DataError(f"{where}: magic number {int.from_bytes(first, 'big')}, expected {magic} "
                        f"(MNIST images {MAGIC['images']}, labels {MAGIC['labels']})")
    return type_code, ndim


def check_shape(shape: tuple[int, ...], where: str) -> None:
    """Every dimension (a signed int32 in the file) must be at least 1."""
    for axis, length in enumerate(shape):
        if length < 1:
            raise DataError(f"{where}: header shape {shape}: dimension {axis} is not positive "
                            f"(expected 1 to {2**31 - 1}, got {length})")


def read_header(stream: BinaryIO, where: str, magic: int | None = None) -> IdxHeader:
    """Read and check the header (``4 + 4 * ndim`` bytes) from ``stream``, leaving it at the data."""
    first = stream.read(4)
    if len(first) < 4:
        raise DataError(f"{where}: too short for an IDX header (expected at least 4 bytes, got {len(first)})")
    type_code, ndim = check_magic(first, where, magic)
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{where}: truncated header: {ndim} dims need {4 + 4 * ndim} bytes "
                        f"(expected {4 + 4 * ndim} bytes, got {4 + len(dims)})")
    shape = struct.unpack(f">{ndim}i", dims)
    check_shape(shape, where)
    return IdxHeader(int.from_bytes(first, "big"), IDX_DTYPES[type_code], shape)


def check_declared(header: IdxHeader, where: str, max_bytes: int, total: int | None = None,
                   compressed: int | None = None) -> None:
    """Before any data is read: the declared payload is at most ``max_bytes``; given the ``total`` bytes of
    an uncompressed source it matches them exactly; given the ``compressed`` size of a ``.gz`` file, the
    declared bytes are at most ``MAX_GZIP_RATIO`` times it."""
    expected = header.size + header.payload
    if header.payload > max_bytes:
        elements = math.prod(header.shape)
        overflow = f"; its {elements} elements overflow int64" if elements > np.iinfo(np.int64).max else ""
        raise DataError(f"{where}: too large: header says {header.describe()}, {header.payload} bytes, more than "
                        f"the limit{overflow} (expected at most {max_bytes} bytes, got {header.payload})")
    if compressed is not None and expected > MAX_GZIP_RATIO * compressed:
        raise DataError(f"{where}: compression ratio exceeded: header says {header.describe()}, {expected} bytes "
                        f"with the header, from a {compressed}-byte .gz file; deflate expands at most "
                        f"{MAX_GZIP_RATIO}x, so the header lies or the file is cut short "
                        f"(expected at most {MAX_GZIP_RATIO * compressed} bytes, got {expected})")
    if total is not None and total != expected:
        state = "truncated" if total < expected else "has trailing bytes"
        raise DataError(f"{where}: {state}: header says {header.describe()} "
                        f"(expected {expected} bytes with the header, got {total})")


def read_payload(stream: BinaryIO, header: IdxHeader, where: str) -> np.ndarray:
    """The ``header.payload`` data bytes as a flat uint8 array, read ``CHUNK_BYTES`` at a time."""
    out = np.empty(header.payload, np.uint8)
    view, done = memoryview(out), 0
    while done < header.payload:
        chunk = stream.read(min(CHUNK_BYTES, header.payload - done))
        if not chunk:
            raise DataError(f"{where}: truncated: header says {header.describe()} (expected "
                            f"{header.size + header.payload} bytes with the header, got {header.size + done})")
        view[done:done + len(chunk)] = chunk
        done += len(chunk)
    return out


def check_end(stream: BinaryIO, header: IdxHeader, where: str) -> None:
    """Nothing may follow the declared data: asks for one byte more. For a ``.gz`` that decompresses at most
    one byte, reading on (at zlib's speed) to the end of the member, checking its CRC and size, and past
    any zero padding and empty members to the end of the file."""
    if stream.read(1):
        expected = header.size + header.payload
        raise DataError(f"{where}: has trailing bytes: header says {header.describe()} "
                        f"(expected {expected} bytes with the header, got at least {expected + 1})")


def read_stream(stream: BinaryIO, where: str, magic: int | None = None, max_bytes: int = MAX_PAYLOAD_BYTES,
                total: int | None = None, compressed: int | None = None) -> np.ndarray:
    """Header, size checks (:func:`check_declared`), exactly the declared data, nothing after it -> ndarray
    of the header's shape, native byte order."""
    header = read_header(stream, where, magic)
    check_declared(header, where, max_bytes, total, compressed)
    payload = read_payload(stream, header, where)
    check_end(stream, header, where)
    return payload.view(header.dtype).reshape(header.shape).astype(header.dtype.newbyteorder("="), copy=False)


def parse_idx(data: bytes, where: str = "IDX data", magic: int | None = None, *,
              max_bytes: int = MAX_PAYLOAD_BYTES) -> np.ndarray:
    """IDX bytes -> ndarray of the header's shape and dtype; raises :class:`DataError` when malformed
    or, given ``magic``, when the header's magic number differs (2051 images, 2049 labels)."""
    return read_stream(io.BytesIO(data), where, magic, max_bytes, total=len(data))


def open_stream(file: BinaryIO, gunzip: bool) -> BinaryIO | GunzipStream:
    """``file`` itself, or its decompressed bytes when ``gunzip``: either way a ``read(n)`` stream."""
    return GunzipStream(file) if gunzip else file


def read_idx(path: str | os.PathLike, magic: int | None = None, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an ndarray, checking header, length and ``magic``.

    Any problem raises :class:`DataError` naming the file, after bounded work: the header is checked
    before any data is read (payload at most ``max_bytes``, a ``.gz`` at most ``MAX_GZIP_RATIO`` times
    its size, a raw file exactly its size), then exactly the declared bytes are read, then one more
    to reject trailing data. Memory: the result plus ~2 ``CHUNK_BYTES``; time: linear in the file's
    size and the declared size, never in what a ``.gz`` would decompress to beyond it.
    """
    path = Path(path)
    where = f"read_idx: {path}"
    with reading(where), path.open("rb") as file:
        size, gz = regular_size(file), path.suffix == ".gz"
        return read_stream(open_stream(file, gz), where, magic, max_bytes,
                           total=None if gz else size, compressed=size if gz else None)


def iter_bytes(path: Path, gunzip: bool, max_bytes: int = MAX_PAYLOAD_BYTES + MAX_HEADER_BYTES) -> Iterator[bytes]:
    """The file's bytes (gunzipped when ``gunzip``) in chunks of at most ``CHUNK_BYTES``; :class:`DataError`
    when unreadable, corrupt or longer than ``max_bytes``."""
    where = f"read_bytes: {path}"
    with reading(where), Path(path).open("rb") as file:
        stream, total = open_stream(file, gunzip), 0
        while chunk := stream.read(CHUNK_BYTES):
            total += len(chunk)
            if total > max_bytes:
                raise DataError(f"{where}: too large (expected at most {max_bytes} bytes, got more)")
            yield chunk


def read_bytes(path: Path, max_bytes: int = MAX_PAYLOAD_BYTES + MAX_HEADER_BYTES) -> bytes:
    """The file's bytes, gunzipped when it ends in ``.gz``; a corrupt, unreadable or larger than ``max_bytes``
    file raises :class:`DataError`."""
    return b"".join(iter_bytes(Path(path), Path(path).suffix == ".gz", max_bytes))


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
    digest = hashlib.md5()
    for chunk in iter_bytes(path, gunzip=kind != "gz"):
        digest.update(chunk)
    got = digest.hexdigest()
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
    check_choice(dataset, DATASETS, "load_dataset", "dataset")
    check_bool(download_missing, "load_dataset", "download_missing")
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
        if labels.max(initial=0) >= NUM_CLASSES:
            raise DataError(f"load_dataset: {found} {split} labels out of range (expected 0 to {NUM_CLASSES - 1}, "
                            f"got {labels.max()} at index {int(labels.argmax())})")
    return Dataset(dataset, directory=found, **arrays)
