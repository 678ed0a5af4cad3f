"""Data-parallel fit under torchrun (2 CPU processes on loopback, gloo): one ordinary checkpoint from
rank 0, the same validation error as one process at the same budget, reproducible at a world size."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import long_text, subprocess_env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="torchrun on loopback is tested on Linux")
FIT = ["--model", "gru", "--max-steps", "60", "-H", "6", "-L", "24", "--param", "hidden_size=8", "--seed", "3"]


def torchrun(*args, timeout: float = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "seqcast", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), timeout=timeout)


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "panel.csv"
    path.write_text(long_text(ids=tuple(f"s{i}" for i in range(12)), n=200), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_process_fit(panel):
    out = panel.parent / "ddp.ckpt"
    done = torchrun("fit", panel, *FIT, "-o", out)
    assert done.returncode == 0, done.stderr
    return out, done


def test_two_processes_train_one_checkpoint_that_predicts(two_process_fit, panel, invoke):
    from seqcast.checkpoint import load

    path, done = two_process_fit
    assert list(panel.parent.glob("*.ckpt")) == [path]  # rank 0 alone wrote, nothing else
    assert done.stderr.count("checkpoint:") == 1  # rank 0 alone reported
    loaded = load(path)
    assert loaded.training.world_size == 2
    code, out, err = invoke("predict", path, panel)
    assert code == 0, err
    assert len(out.splitlines()) == 1 + 12 * 6
    code, out, _ = invoke("info", path)
    assert code == 0 and "2 processes (torchrun, data parallel)" in out


def test_validation_error_matches_one_process_at_the_same_budget(two_process_fit, panel, tmp_path, invoke):
    """Same seed, same global batch and steps: the windows seen are those of one process, so the
    validation error agrees (up to the order of floating-point sums)."""
    from seqcast.checkpoint import load

    one = tmp_path / "one.ckpt"
    code, _, err = invoke("fit", panel, *FIT, "--threads", "1", "-o", one)
    assert code == 0, err
    single, double = load(one).training, load(two_process_fit[0]).training
    assert double.steps == single.steps and double.settings.batch_size == single.settings.batch_size
    assert double.val_mse_scaled == pytest.approx(single.val_mse_scaled, rel=0.05)


def test_the_same_world_size_reproduces_the_forecast(two_process_fit, panel, invoke):
    again = panel.parent / "again.ckpt"
    done = torchrun("fit", panel, *FIT, "-o", again)
    assert done.returncode == 0, done.stderr
    first, second = (invoke("predict", p, panel)[1] for p in (two_process_fit[0], again))
    assert first == second


def test_more_processes_than_a_batch_can_share_is_refused(panel, tmp_path):
    out = tmp_path / "x.ckpt"
    done = torchrun("fit", panel, *FIT, "--batch-size", "1", "-o", out)
    assert done.returncode != 0 and not out.exists()
    assert "2 processes share each batch of 1 windows" in done.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("killed", [1, 0])
def test_a_rank_killed_mid_training_leaves_the_other_with_a_clear_message_not_exit_1(killed, panel, tmp_path):
    """The processes torchrun starts, started here by hand (the same environment) so that one can be
    killed once training is under way: the survivor ends with exit 2 saying another process stopped,
    never 'unexpected RuntimeError ... Connection reset'; nothing is written."""
    port, out, ranks = _free_port(), tmp_path / "ddp.ckpt", []
    for rank in (0, 1):
        env = subprocess_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                             MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        ranks.append(subprocess.Popen([sys.executable, "-m", "seqcast", "fit", str(panel), *FIT[:2], "--epochs", "100000",
                                       "--patience", "100000", *FIT[4:], "-o", str(out)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env))
    try:
        while b" epoch " not in ranks[0].stderr.readline():  # rank 0 reports each epoch: training is under way
            assert ranks[0].poll() is None, ranks[0].stderr.read().decode()
        ranks[killed].kill()
        _, err = ranks[1 - killed].communicate(timeout=180)
    finally:
        for process in ranks:
            if process.poll() is None:
                process.kill()
            process.wait()
    err = err.decode("utf-8", "replace")
    assert ranks[1 - killed].returncode == 2, err
    assert "another of the 2 processes of this run stopped" in err and "unexpected" not in err, err
    assert not out.exists()
