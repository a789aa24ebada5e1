"""comparisons.cli: bad flags, paths and data fail at once, in one line, with exit code 2."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

from comparisons import cli, training, verify
from tests.idx_files import write_dataset, write_idx


def run_cli(capsys, *argv) -> tuple[int, str]:
    """Exit code and stderr of ``cnnref argv``, argparse's own errors (SystemExit(2)) included."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture
def mnist_like(tmp_path):
    folder = tmp_path / "data"
    write_dataset(folder, n_train=16, n_test=4)
    return folder


def test_an_output_folder_that_is_a_file_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    code, err = run_cli(capsys, "audit", "--out", str(blocker))
    assert code == 2 and err.strip() == f"cnnref audit: --out: {blocker} is a file, expected a folder"


def test_a_json_path_below_a_file_fails_before_training(tmp_path, capsys, mnist_like):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    code, err = run_cli(capsys, "train", "--data-dir", str(mnist_like), "--json", str(blocker / "x.json"))
    assert code == 2 and f"--json: {blocker} is a file, not a folder" in err


def test_missing_output_folders_are_created_when_written_not_before(tmp_path, capsys, mnist_like):
    unused = tmp_path / "new" / "reports"
    code, _ = run_cli(capsys, "audit", "--list", "--out", str(unused))
    assert code == 0 and not (tmp_path / "new").exists()  # --list writes nothing
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # the check of the folder left nothing behind
    code, _ = run_cli(capsys, "train", "--data-dir", str(tmp_path / "absent"), "--epochs", "0",
                      "--json", str(tmp_path / "made" / "r.json"))
    assert code == 2 and not (tmp_path / "made").exists()  # refused before any work
    out = tmp_path / "deep" / "er" / "r.json"
    code, _ = run_cli(capsys, "train", "--data-dir", str(mnist_like), "--train-samples", "8", "--no-progress",
                      "--json", str(out))
    assert code == 0 and out.is_file()


def output_flags() -> list[tuple[str, str, bool]]:
    """``(command, flag, is a folder)`` for every option of every command that names a path it writes: the
    arguments the CLI checks as outputs (``cli.OUTPUT_FOLDERS`` and ``cli.OUTPUT_FILES``)."""
    found = []
    for command, (module, _) in cli.SUBCOMMANDS.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(module).add_arguments(parser)
        for action in parser._actions:
            if action.dest in (*cli.OUTPUT_FOLDERS, *cli.OUTPUT_FILES):
                found.append((command, action.option_strings[0], action.dest in cli.OUTPUT_FOLDERS))
    return found


# what a command needs besides its output flags to get past argparse
REQUIRED_ARGUMENTS = {"check": ("examples/student_layers.py:Conv2d", "--layer", "Conv2d")}


def refuse_to_run(monkeypatch, command: str) -> None:
    """Make running ``command`` fail the test: the output check must come before any work."""
    module = importlib.import_module(cli.SUBCOMMANDS[command][0])
    monkeypatch.setattr(module, "run", lambda args: pytest.fail(f"cnnref {command} ran despite its output path"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc (no file can be created there)")
@pytest.mark.parametrize("command,flag,folder", output_flags())
def test_an_output_path_that_cannot_be_written_fails_before_any_work(monkeypatch, capsys, command, flag, folder):
    refuse_to_run(monkeypatch, command)
    target = "/proc/cnnref-absent/out" if folder else "/proc/cnnref-absent/out.json"
    code, err = run_cli(capsys, command, *REQUIRED_ARGUMENTS.get(command, ()), flag, target)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"cnnref {command}: {flag} {target}: cannot write there (creating a file in /proc: "), err


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys (no file can be created there)")
def test_a_json_path_in_sys_fails_in_one_line(tmp_path, capsys):
    code, err = run_cli(capsys, "train", "--data-dir", str(tmp_path / "absent"), "--json", "/sys/x.json")
    assert code == 2 and err.startswith("cnnref train: --json /sys/x.json: cannot write there (creating a file in "
                                        "/sys: "), err


def test_an_existing_file_that_cannot_be_opened_for_writing_is_refused(tmp_path, monkeypatch, capsys):
    """Its folder is writable; the file itself is not (as a read-only file for a user other than root)."""
    target = tmp_path / "locked.json"
    target.write_text("{}")
    real_open = os.open

    def open_refusing_target(path, flags, *args, **kwargs):
        if Path(path) == target and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_refusing_target)
    refuse_to_run(monkeypatch, "verify")
    code, err = run_cli(capsys, "verify", "--json", str(target))
    assert code == 2
    assert err.strip() == (f"cnnref verify: --json {target}: cannot write there (opening {target} for writing: "
                           "Permission denied)")
    assert target.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["locked.json"]


def test_a_corrupt_data_file_is_one_line_not_a_traceback(tmp_path, capsys, mnist_like):
    (mnist_like / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    code, err = run_cli(capsys, "train", "--data-dir", str(mnist_like), "--train-samples", "8", "--no-progress")
    assert code == 2
    assert err.startswith("cnnref train: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags,message", [
    (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--framework", "torch", "--impl", "loop"], "--impl chooses the reference's kernels"),
    (["--compare", "--framework", "keras"], "--compare runs the reference and every framework; drop --framework"),
])
def test_train_refuses_bad_flags_before_loading_data(tmp_path, capsys, flags, message):
    code, err = run_cli(capsys, "train", "--data-dir", str(tmp_path / "absent"), *flags)
    assert code == 2 and message in err


@pytest.mark.parametrize("change,message", [
    ("small-images", "the tutorial CNN takes 28x28 images; the train images in"),
    ("label-10", "test labels out of range (expected 0 to 9, got 10 at index 3)"),
])
def test_train_refuses_data_the_tutorial_cnn_cannot_take(capsys, mnist_like, change, message):
    if change == "small-images":
        write_idx(mnist_like / "train-images-idx3-ubyte.gz", np.zeros((16, 10, 10), np.uint8))
    else:
        write_idx(mnist_like / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 10], np.uint8))
    code, err = run_cli(capsys, "train", "--data-dir", str(mnist_like), "--train-samples", "8", "--no-progress")
    assert code == 2 and message in err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # diverging on purpose: overflow, then inf * 0
def test_a_diverging_run_stops_with_the_step(capsys, mnist_like):
    code, err = run_cli(capsys, "train", "--data-dir", str(mnist_like), "--lr", "1e300", "--train-samples", "8",
                        "--no-progress", "--optimizer", "sgd")
    assert code == 2 and "training diverged" in err and "at step" in err


def test_planned_steps_counts_the_short_last_batch_and_the_cap():
    assert training.planned_steps(10, 4, 2) == 6
    assert training.planned_steps(10, 4, 2, max_steps=5) == 5
    assert training.planned_steps(844 * 64, 64, 1, max_steps=3000) == 844


def test_compare_reports_the_steps_it_ran(tmp_path, capsys, mnist_like):
    out = tmp_path / "cmp.json"
    code, _ = run_cli(capsys, "train", "--data-dir", str(mnist_like), "--compare", "--steps", "100",
                      "--train-samples", "12", "--batch-size", "4", "--json", str(out))
    import json

    summary = json.loads(out.read_text())
    assert code == 0 and summary["steps"] == 3
    assert all(np.isfinite(row["seconds_per_step"]) for row in summary["compare"] if "skipped" not in row)


@pytest.mark.parametrize("flag", ["--threads", "--rounds"])
def test_bench_counts_must_be_positive(capsys, flag):
    code, err = run_cli(capsys, "bench", flag, "0")
    assert code == 2 and f"argument {flag}: must be >= 1, got 0" in err


def test_verify_layer_takes_a_family_and_refuses_unknown_names(capsys):
    selected = {c.layer for c in verify.cases.all_cases() if c.family == "Conv2d"}
    assert {"Conv2d", "Conv2d(grouped)", "Conv2d(depthwise)"} <= selected
    assert "Conv2d" in verify.layer_families() and "Conv2d(grouped)" in verify.layer_families()
    code, err = run_cli(capsys, "verify", "--layer", "NOPE")
    assert code == 2 and "invalid choice: 'NOPE'" in err


def test_verify_with_nothing_compared_is_not_a_pass(monkeypatch, capsys):
    monkeypatch.setattr(verify, "verify", lambda frameworks, layers: ([], {"torch": {"not installed": 3}}))
    code, err = run_cli(capsys, "verify", "--framework", "torch", "--layer", "ReLU")
    assert code == 1 and "nothing was compared" in err
