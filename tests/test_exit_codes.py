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


# --- every user error is exit 2, whatever library meets it first (issue 30, section 3) ---

@pytest.mark.parametrize("freq, message", [
    ("9999999999999999999h", "a step longer than the timestamps can span"),
    ("99999999999h", "a step longer than the timestamps can span"),
    ("9999999999999YS", "a step longer than the timestamps can span"),
])
def test_a_frequency_too_large_for_timestamps_is_exit_2_naming_it(freq, message, invoke, hourly_csv, tmp_path):
    code, _, err = invoke("fit", hourly_csv, "--freq", freq, "--epochs", "1", "--output", tmp_path / "m.ckpt")
    assert code == 2 and f"--freq {freq!r}" in err and message in err, err


def test_an_integer_step_beyond_64_bits_is_exit_2(invoke, tmp_path):
    data = tmp_path / "steps.csv"
    data.write_text("t,y\n" + "".join(f"{i},{i % 7}\n" for i in range(1, 200)), encoding="utf-8")
    code, _, err = invoke("fit", data, "--freq", str(2**63), "--output", tmp_path / "m.ckpt")
    assert code == 2 and "a step beyond what a 64-bit integer holds" in err, err
    huge = tmp_path / "huge.csv"  # a time value past int64 in the data itself
    huge.write_text(f"t,y\n1,1\n2,2\n3,3\n{2**63 + 1},4\n", encoding="utf-8")
    code, _, err = invoke("fit", huge, "--output", tmp_path / "m.ckpt")
    assert code == 2 and "unexpected" not in err, err


@pytest.mark.parametrize("flag", ["--windows", "--stride"])
def test_a_whole_number_beyond_64_bits_is_exit_2_naming_the_option(flag, invoke, tiny_ckpt, hourly_csv):
    code, _, err = invoke("evaluate", tiny_ckpt, hourly_csv, "--in-sample", flag, str(2**70))
    assert code == 2 and f"{flag} {2**70}: too large" in err, err


def test_the_largest_64_bit_window_count_asks_for_what_the_data_has(invoke, tiny_ckpt, hourly_csv):
    code, out, err = invoke("evaluate", tiny_ckpt, hourly_csv, "--in-sample", "--windows", str(2**63 - 1), "--json")
    assert code == 0 and '"windows"' in out, err


@pytest.mark.parametrize("models", [",", " , ,"])
def test_compare_models_naming_no_model_is_exit_2(models, invoke, hourly_csv):
    code, _, err = invoke("compare", hourly_csv, "--models", models)
    assert code == 2 and "names no model" in err, err


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["predict", "info", "models", "evaluate"])
def test_stdout_on_a_full_device_is_exit_2_saying_so(command, tiny_ckpt, hourly_csv):
    import subprocess

    from conftest import cli_command, subprocess_env

    args = {"predict": [tiny_ckpt, hourly_csv], "info": [tiny_ckpt], "models": [],
            "evaluate": [tiny_ckpt, hourly_csv, "--in-sample", "--windows", "2"]}[command]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(cli_command(command, *args), stdout=full, stderr=subprocess.PIPE, env=subprocess_env(),
                              timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "the disk is full" in err and "Traceback" not in err and "unexpected" not in err, err


def test_an_onnxruntime_failure_at_predict_is_exit_2_saying_what_to_do(tiny_ckpt, hourly_csv, tmp_path, invoke,
                                                                       monkeypatch):
    """onnxruntime refusing a graph at run time (as a crafted or mismatched graph makes it do) is the
    model file's fault, not a bug of seqcast's: exit 2 with what to do."""
    for module in ("onnxruntime", "onnx", "onnxscript"):
        pytest.importorskip(module)
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    from seqcast import export
    from seqcast.checkpoint import load

    model = tmp_path / "m.onnx"
    model.write_bytes(export.export(load(tiny_ckpt)).data)

    def refuses(*_, **__):
        raise RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while "
                               "running Reshape node.")
    monkeypatch.setattr(onnxruntime.InferenceSession, "run", refuses)
    code, out, err = invoke("predict", model, hourly_csv)
    assert code == 2 and out == "", err
    assert "the exported graph fails on these windows" in err and "export the checkpoint again" in err, err
    assert "unexpected" not in err, err
    with pytest.raises(Exception) as caught:
        onnxruntime.InferenceSession(b"not a model")
    from seqcast.errors import from_library

    assert from_library(caught.value).exit_code == 2


def test_json_nested_past_the_recursion_limit_is_exit_2(tiny_ckpt, hourly_csv, tmp_path, invoke):
    """A checkpoint header or a journal record nested 200,000 deep (RecursionError in json) is bad input."""
    import struct

    pytest.importorskip("optuna")
    data = tiny_ckpt.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = b'{"__metadata__":{"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}}"
    deep = tmp_path / "deep.ckpt"
    deep.write_bytes(struct.pack("<Q", len(header)) + header + data[8 + size:])
    for args in (["info", deep], ["predict", deep, hourly_csv]):
        code, _, err = invoke(*args)
        assert code == 2 and "unexpected" not in err, err
    journal = tmp_path / "deep.log"
    journal.write_bytes(b'{"op_code":0}\n' + b"[" * 200_000 + b"]" * 200_000 + b'\n{"op_code":0}\n')
    code, _, err = invoke("tune", hourly_csv, "--model", "nlinear", "--trials", "1", "--storage", journal,
                          "--output", tmp_path / "t.ckpt")
    assert code == 2 and "unexpected" not in err, err
