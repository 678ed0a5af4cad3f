"""The tune journal survives a failed or interrupted write, and every storage failure is exit 2 saying
what to do (issue 30, section 3): a torn last record is dropped with a note, a storage that is no file,
a full disk or a file-size limit, and a database URL whose password is never printed."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess

import pytest

from conftest import cli_command, subprocess_env

pytest.importorskip("optuna")
TUNE = ["--model", "nlinear", "-H", "6", "--max-steps", "20"]


@pytest.fixture()
def journal(invoke, hourly_csv, tmp_path):
    path = tmp_path / "study.log"
    code, _, err = invoke("tune", hourly_csv, *TUNE, "--trials", "2", "--storage", path, "--output", tmp_path / "a.ckpt")
    assert code == 0, err
    return path


@pytest.mark.parametrize("cut", ["mid_record", "garbled_last_line"])
def test_a_torn_last_record_is_dropped_with_a_note_and_the_search_resumes(cut, journal, invoke, hourly_csv, tmp_path):
    data = journal.read_bytes()
    torn = data[:-40] if cut == "mid_record" else data + b'{"op_code": 6, "tri\n'
    journal.write_bytes(torn)
    for trials in (3, 4):  # resumed twice: the second run finds a whole journal, and says nothing about it
        code, _, err = invoke("tune", hourly_csv, *TUNE, "--trials", trials, "--storage", journal,
                              "--output", tmp_path / f"{trials}.ckpt")
        assert code == 0, err
        assert ("dropped its last record" in err) == (trials == 3), err
    assert journal.read_bytes().endswith(b"}\n")


def test_repair_leaves_a_whole_journal_alone(journal):
    from seqcast.tuning import repair_journal

    before = journal.read_bytes()
    assert repair_journal(str(journal)) is None and journal.read_bytes() == before
    assert repair_journal("postgresql://x:y@h/db") is None and repair_journal(None) is None


@pytest.mark.parametrize("storage", ["/dev/null", "."])
def test_a_storage_that_is_no_regular_file_is_exit_2(storage, invoke, hourly_csv, tmp_path):
    code, _, err = invoke("tune", hourly_csv, *TUNE, "--trials", "1", "--storage", storage, "--output", tmp_path / "t.ckpt")
    assert code == 2 and "--storage" in err and "unexpected" not in err, err


def test_a_journal_write_past_the_file_size_limit_is_exit_2_and_the_next_run_resumes(journal, hourly_csv, tmp_path, invoke):
    """A full disk as a test can make one: writes past RLIMIT_FSIZE fail (EFBIG) and cut the record."""
    limit = journal.stat().st_size + 300

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(cli_command("tune", hourly_csv, *TUNE, "--trials", "4", "--storage", journal,
                                      "--output", tmp_path / "t.ckpt"), capture_output=True, text=True,
                          env=subprocess_env(), preexec_fn=limited, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "file-size limit" in done.stderr and "unexpected" not in done.stderr, done.stderr
    code, _, err = invoke("tune", hourly_csv, *TUNE, "--trials", "4", "--storage", journal, "--output", tmp_path / "t.ckpt")
    assert code == 0, err


def test_a_full_disk_or_quota_under_any_library_is_exit_2():
    from seqcast.errors import from_library

    for number in (errno.ENOSPC, errno.EDQUOT):
        error = from_library(OSError(number, os.strerror(number), "/data/study.log"))
        assert error is not None and error.exit_code == 2 and str(error).startswith("/data/study.log: ")
    assert from_library(RecursionError("maximum recursion depth exceeded")).exit_code == 2
    assert from_library(ValueError("a bug of ours")) is None


def test_a_database_url_is_shown_without_its_password(invoke, hourly_csv, tmp_path):
    from seqcast.errors import UsageError
    from seqcast.tuning import open_storage, require_optuna

    with pytest.raises(UsageError) as caught:
        open_storage(require_optuna(), "sqlite://bob:s3cret@/no/such/folder/x.db")
    assert "s3cret" not in str(caught.value) and "bob:***@" in str(caught.value)
