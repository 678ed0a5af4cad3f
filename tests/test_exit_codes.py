"""Every failure caused by an option is exit 2 with a message naming it; exit 1 is for seqcast's bugs."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed -1: must be a whole number from 0 to 4294967295"),
    (["--seed", str(2**32)], f"--seed {2**32}: must be a whole number"),
    (["--param", "hidden_size=1000000000"], "not enough memory to build it; choose smaller --param values"),
    (["--horizon", "-6"], "must be at least 1"),
    (["--lookback", "-5"], "must be at least 1"),
])
def test_fit_options_out_of_range_are_exit_2_naming_them(args, message, invoke, hourly_csv, tmp_path):
    defaults = {"--lookback": "24", "--horizon": "6", "--param": "hidden_size=8"}
    options = ["--model", "gru", "--epochs", "1", *args]
    for flag, value in defaults.items():
        if flag not in args:
            options += [flag, value]
    code, _, err = invoke("fit", hourly_csv, *options, "--output", tmp_path / "m.ckpt")
    assert code == 2 and message in err, err
    assert not (tmp_path / "m.ckpt").exists()


@pytest.mark.parametrize("args, message", [
    (["--windows", "-3"], "--windows -3: must be at least 1"),
    (["--windows", "0"], "--windows 0: must be at least 1"),
    (["--stride", "-1"], "--stride -1: must be at least 0"),
])
def test_evaluate_window_options_are_checked(args, message, invoke, tiny_ckpt, hourly_csv):
    code, _, err = invoke("evaluate", tiny_ckpt, hourly_csv, "--in-sample", *args)
    assert code == 2 and message in err, err


def test_a_billion_windows_asks_for_what_the_data_has(invoke, tiny_ckpt, hourly_csv):
    code, out, err = invoke("evaluate", tiny_ckpt, hourly_csv, "--in-sample", "--windows", "1000000000", "--json")
    assert code == 0, err
    assert '"windows"' in out
