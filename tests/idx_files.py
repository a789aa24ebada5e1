"""Small IDX files written from the format's description (``struct``), independently of ``reference.data``: what
the data, CLI and training tests read; and where the real MNIST files are when present."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from reference import data

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = PROJECT_ROOT.parent / "shared" / "data" / "mnist"  # ../shared beside the project
REQUIRE_MNIST_VAR = "CNNREF_REQUIRE_MNIST"  # set to 1 (CI, where ../shared is beside the clone): absent data fails
TYPE_CODES = {np.uint8: 0x08, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


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


def shared_mnist() -> Path | None:
    """The real MNIST folder, or None when it is absent (the caller skips or falls back to its own data); under
    ``CNNREF_REQUIRE_MNIST=1`` an absent folder fails the test instead, so that a wrong path cannot pass as a skip."""
    if SHARED_MNIST.is_dir():
        return SHARED_MNIST
    if os.environ.get(REQUIRE_MNIST_VAR) == "1":
        pytest.fail(f"real MNIST not found at {SHARED_MNIST} and {REQUIRE_MNIST_VAR}=1")
    return None
