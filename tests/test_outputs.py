"""Outputs never destroy what they should not (seqcast.files): links are written through, devices and
pipes are streamed to, folders and inputs are refused, modes are kept, file-system failures are
exit 2 with the old file intact and no temporary left, and killed runs leave nothing behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from seqcast import checkpoint as ckpt_module
from seqcast.errors import InputError, UsageError
from seqcast.files import atomic_write, check_outputs, lock_path, output_lock


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_link_is_written_through_to_its_target(tmp_path):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "2026-12-01.csv"
    target.write_bytes(b"yesterday\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    atomic_write(link, b"today\n")
    assert link.is_symlink() and target.read_bytes() == b"today\n"
    assert lock_path(link) == lock_path(target)  # one lock, whichever name reaches the file
    assert not _temporaries(tmp_path) and not _temporaries(tmp_path / "runs")


def test_devices_and_pipes_are_streamed_to_never_replaced(tmp_path):
    atomic_write(os.devnull, b"discarded\n")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    with output_lock(os.devnull):
        pass
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write(fifo, b"through the pipe\n")
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_device_is_exit_2_naming_the_path():
    with pytest.raises(InputError, match=r"/dev/full: cannot write it: the disk is full") as info:
        atomic_write("/dev/full", b"x" * 10)
    assert info.value.exit_code == 2


def test_folders_sockets_inputs_and_twice_named_outputs_are_refused_before_any_work(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("ds,y\n")
    alias = tmp_path / "alias.csv"
    alias.symlink_to(data)
    for outputs, inputs, message in (([tmp_path], [], "is a folder"),
                                     ([data], [data], "is the input"),
                                     ([alias], [data], "is the input"),
                                     ([tmp_path / "new.csv", tmp_path / "new.csv"], [], "named as two outputs")):
        with pytest.raises(UsageError, match=message) as info:
            check_outputs(outputs, inputs)
        assert info.value.exit_code == 2
    check_outputs([tmp_path / "other.csv", "-", None], [data, "-"])
    with pytest.raises(InputError, match="is a folder"):
        atomic_write(tmp_path, b"x")
    assert data.read_text() == "ds,y\n"


def test_an_existing_file_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path):
    private = tmp_path / "private.csv"
    private.write_bytes(b"old\n")
    private.chmod(0o600)
    atomic_write(private, b"new\n")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_bytes() == b"new\n"
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "fresh.csv", b"x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.csv").stat().st_mode) == 0o640


def test_temporaries_of_a_killed_run_are_removed_by_the_next_write(tmp_path):
    out = tmp_path / "forecast.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".forecast.csv.{int(dead.stdout)}.k1ll3d.tmp"
    stale.write_bytes(b"half a forecast")
    alive = tmp_path / f".forecast.csv.{os.getpid()}.running.tmp"  # a write still in progress
    alive.write_bytes(b"being written")
    other = tmp_path / f".other.csv.{int(dead.stdout)}.x.tmp"
    other.write_bytes(b"not ours")
    atomic_write(out, b"complete\n")
    assert out.read_bytes() == b"complete\n"
    assert not stale.exists() and alive.exists() and other.exists()


def test_a_write_past_the_file_size_limit_is_exit_2_with_the_old_file_intact(tmp_path):
    """A full disk as ``ulimit -f`` makes it: the write fails, the message names the user's path."""
    out = tmp_path / "forecast.csv"
    out.write_bytes(b"good forecast\n")
    script = ("import resource, signal, sys\n"
              "from seqcast.files import atomic_write\n"
              "from seqcast.errors import SeqcastError\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
              "try:\n"
              f"    atomic_write({str(out)!r}, b'x' * 100_000)\n"
              "except SeqcastError as e:\n"
              "    print(e); sys.exit(e.exit_code)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith(f"{out}: cannot write it:") and ".tmp" not in result.stdout
    assert out.read_bytes() == b"good forecast\n" and not _temporaries(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; permissions cannot be tested")
def test_a_read_only_folder_is_exit_2_naming_the_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "f.csv").write_bytes(b"old\n")
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match=r"f.csv: cannot write it: permission denied"):
            atomic_write(folder / "f.csv", b"new\n")
    finally:
        folder.chmod(0o755)
    assert (folder / "f.csv").read_bytes() == b"old\n" and not _temporaries(folder)


def test_commands_refuse_to_write_over_their_inputs_before_any_work(invoke, tiny_ckpt, hourly_csv, tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes(hourly_csv.read_bytes())
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(tiny_ckpt.read_bytes())
    before = (data.read_bytes(), ckpt.read_bytes())
    future = tmp_path / "future.csv"
    future.write_bytes(b"timestamp,value\n")
    journal = tmp_path / "study.csv"  # an Optuna journal, named as compare's --output may be named
    journal.write_bytes(b"")
    import importlib.util

    shared = [["compare", data, "--models", "nlinear", "--storage", journal, "--output", journal]] \
        if importlib.util.find_spec("optuna") else []  # (--storage needs seqcast[tune])
    before = (*before, future.read_bytes(), journal.read_bytes())
    for args in (["predict", ckpt, data, "--output", data],
                 ["predict", ckpt, data, "--future", future, "--output", future],
                 ["export", ckpt, "--output", ckpt],
                 *shared,
                 ["fit", data, "--init-from", ckpt, "--output", data, "--force"],
                 ["evaluate", ckpt, data, "--forecasts", ckpt],
                 ["explain", ckpt, data, "--output", ckpt],
                 ["compare", data, "--models", "nlinear", "--output", data],
                 ["fit", data, "--model", "nlinear", "--output", data, "--force"]):
        code, out, err = invoke(*args)
        assert code == 2 and "is the input" in err, (args, err)
        assert "epoch" not in err and "round" not in err, "refused before training"
    assert (data.read_bytes(), ckpt.read_bytes(), future.read_bytes(), journal.read_bytes()) == before


def test_every_file_a_command_names_has_one_role():
    """The rule of which files a command may write is computed in one place (cli/options.py READS,
    WRITES, UPDATES) from the parameters' names: every parameter typed as a path is one of them, so a
    new file option cannot slip past it (DATA, which may be "-", and the text-typed outputs are named
    there too)."""
    import inspect
    import typing

    from seqcast.cli import app
    from seqcast.cli.options import READS, UPDATES, WRITES

    folders = {"save_dir", "record"}  # folders a command writes new files into (compare --save-dir, the forecast record)
    for registered in app.registered_commands:
        for name in inspect.signature(registered.callback).parameters:
            hint = typing.get_type_hints(registered.callback).get(name)
            if "Path" in str(hint) and name not in folders:
                assert name in READS + WRITES, (registered.callback.__name__, name)
    assert set(UPDATES) <= set(READS) and not set(READS) & set(WRITES)


def test_a_warm_start_writes_its_checkpoint_back_in_place_also_through_a_link(invoke, hourly_csv, tmp_path):
    ckpt, link = tmp_path / "m.ckpt", tmp_path / "current.ckpt"
    assert invoke("fit", hourly_csv, "--model", "nlinear", "--max-steps", "2", "--output", ckpt)[0] == 0
    link.symlink_to(ckpt.name)
    first = ckpt_module.load(ckpt).stored.sha256
    for source in (ckpt, link):
        code, _, err = invoke("fit", hourly_csv, "--init-from", source, "--output", source, "--force", "--max-steps", "2")
        assert code == 0, err
        assert ckpt_module.load(ckpt).training.init_from.sha256 == first and link.is_symlink()
        first = ckpt_module.load(ckpt).stored.sha256
    code, _, err = invoke("fit", hourly_csv, "--init-from", ckpt, "--output", ckpt, "--max-steps", "2")
    assert code == 2 and "pass --force" in err  # in place still needs --force


def test_compare_keeps_saved_checkpoints_unless_forced(invoke, hourly_csv, tmp_path):
    saved = tmp_path / "models"
    saved.mkdir()
    (saved / "nlinear.ckpt").write_bytes(b"yesterday's model")
    args = ["compare", hourly_csv, "--models", "nlinear", "--max-steps", "2", "--save-dir", saved, "--windows", "2"]
    code, _, err = invoke(*args)
    assert code == 2 and "nlinear.ckpt exist; pass --force" in err
    assert (saved / "nlinear.ckpt").read_bytes() == b"yesterday's model"
    code, _, err = invoke(*args, "--force")
    assert code == 0, err
    assert (saved / "nlinear.ckpt").read_bytes()[:8] != b"yesterda" and not list(saved.glob(".*"))


def test_predict_through_a_link_updates_the_file_it_points_to(invoke, tiny_ckpt, hourly_csv, tmp_path):
    target = tmp_path / "forecast-today.csv"
    target.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    code, _, err = invoke("predict", tiny_ckpt, hourly_csv, "--output", link)
    assert code == 0, err
    assert link.is_symlink() and target.read_text().startswith("series,timestamp")


def test_a_forecast_that_is_not_finite_is_exit_2_and_leaves_the_last_good_one(invoke, tiny_ckpt, hourly_csv,
                                                                               tmp_path):
    out = tmp_path / "forecast.csv"
    code, _, err = invoke("predict", tiny_ckpt, hourly_csv, "--output", out)
    assert code == 0, err
    good = out.read_bytes()
    lines = hourly_csv.read_text(encoding="utf-8").splitlines()
    lines[-3] = lines[-3].split(",")[0] + ",1e39"  # one finite glitch in the last window
    glitch = tmp_path / "glitch.csv"
    glitch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = invoke("predict", tiny_ckpt, glitch, "--output", out)
    assert code == 2 and "series 'main': the forecast is not finite" in err and "1e39" in err
    assert out.read_bytes() == good


@pytest.mark.parametrize("points_at", ["victim", "missing"])
def test_a_lock_path_planted_as_a_symbolic_link_is_refused_not_followed(points_at, invoke, hourly_csv, tmp_path):
    """Someone who can write the output's folder plants ``.m.ckpt.lock`` -> a file of the user's: seqcast
    neither follows it (it would create or truncate the file) nor removes what it points to; exit 2 naming it."""
    victim = tmp_path / points_at
    if points_at == "victim":
        victim.write_text("precious\n")
    output = tmp_path / "m.ckpt"
    lock_path(output).symlink_to(victim)
    code, _, err = invoke("fit", hourly_csv, "--model", "nlinear", "--epochs", "1", "-L", "24", "-H", "6",
                          "--output", output)
    assert code == 2 and str(lock_path(output)) in err and "symbolic link" in err, err
    assert not output.exists() and lock_path(output).is_symlink()
    assert (victim.read_text() == "precious\n") if points_at == "victim" else not victim.exists()
    with pytest.raises(UsageError, match="symbolic link"):
        with output_lock(output):
            pass
