"""Text from files, checkpoints and studies reaches the terminal as text: escape sequences, control
characters and bidirectional overrides escaped, a database URL's password hidden (issue 30, section 3)."""

from __future__ import annotations

import pytest

from conftest import hourly_text

ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m"


def clean(text: str) -> bool:
    return not any(ch in text for ch in ("\x1b", "\x07", "\x9b", "\u202e", "\r"))


def test_shown_escapes_controls_and_hides_passwords():
    from seqcast.cli.output import shown

    assert shown("a\x1b[31mb\nc\u202ed\x9b") == "a\\x1b[31mb\\nc\\u202ed\\x9b"
    assert shown("naïve 東京 tab\there") == "naïve 東京 tab\there"  # text is left alone
    assert shown("postgresql://bob:s3cr@t@db.example:5432/x") == "postgresql://bob:***@db.example:5432/x"
    assert shown("mysql+pymysql://bob@db/x and sqlite:///a.db") == "mysql+pymysql://bob@db/x and sqlite:///a.db"


def test_a_data_file_name_and_series_id_with_escapes_reach_info_notes_and_errors_escaped(invoke, tmp_path):
    hostile = tmp_path / f"sales{ESC}.csv"
    header, *rows = hourly_text(200).splitlines()
    timestamps_and_values = (row.split(",") for row in rows)
    hostile.write_text("timestamp,id,value\n" + "".join(f"{t},s{ESC},{v}\n" for t, v in timestamps_and_values),
                       encoding="utf-8")
    ckpt = tmp_path / "m.ckpt"
    code, _, err = invoke("fit", hostile, "--id-col", "id", "--model", "nlinear", "--epochs", "1", "-L", "24",
                          "-H", "6", "--output", ckpt)
    assert code == 0, err
    assert clean(err) and "\\x1b" in err, err  # the file name, in the description and the notes
    code, out, err = invoke("info", ckpt)
    assert code == 0 and clean(out) and "\\x1b]0;owned" in out, out
    code, _, err = invoke("fit", hostile, "--model", f"gru{ESC}", "--output", tmp_path / "x.ckpt")
    assert code == 2 and clean(err) and "\\x1b[2J" in err, err


def test_a_study_name_with_escapes_reaches_trial_lines_and_errors_escaped(invoke, hourly_csv, tmp_path):
    pytest.importorskip("optuna")
    journal = tmp_path / "journal.log"
    code, _, err = invoke("tune", hourly_csv, "--model", "nlinear", "--trials", "1", "--storage", journal,
                          "--study", f"s{ESC}\nseqcast: error: forged", "-H", "6", "--epochs", "1",
                          "--output", tmp_path / "t.ckpt")
    assert code == 0, err
    assert clean(err) and "\nseqcast: error: forged" not in err, err
    code, _, err = invoke("tune", hourly_csv, "--model", "nlinear", "--trials", "0", "--storage", journal,
                          "--study", f"other{ESC}", "--output", tmp_path / "u.ckpt")
    assert code == 2 and clean(err), err


def test_a_database_password_is_never_printed(invoke, hourly_csv, tmp_path):
    pytest.importorskip("optuna")
    for url in ("postgresql://bob:s3cret@127.0.0.1:1/db", "sqlite://bob:s3cret@/nowhere/x.db"):
        code, _, err = invoke("tune", hourly_csv, "--model", "nlinear", "--trials", "1", "--storage", url,
                              "-H", "6", "--output", tmp_path / "t.ckpt")
        assert code == 2 and "s3cret" not in err and "bob:***@" in err, err
