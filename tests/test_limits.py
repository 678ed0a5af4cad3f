"""Limits checked before the data is in memory (issue 30, section 2): a field past the field limit,
more columns than seqcast reads, a long row of the wrong width, and a network past --max-parameters
are refused while the bytes stream past or the network is built, in bounded memory and at once."""

import datetime
import gzip
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import subprocess_env
from seqcast.build import DEFAULT_MAX_PARAMETERS, create_model
from seqcast.data import DataConfig, load_series, series_from_text
from seqcast.data.limits import FIELD_LIMIT, MAX_COLUMNS, MAX_WIDE_COLUMNS, LineLimits
from seqcast.errors import InputError, UsageError
from seqcast.registry import list_models

SAMPLE = Path(__file__).parent.parent / "sample_data" / "nino12_monthly.csv"

# Loads argv[1] ("-" for stdin) with argv[2] ("wide" or not) under an address space of what the
# interpreter holds once seqcast.data is imported, plus 96 MiB: far less than the files given it.
_BOUNDED = """
import resource, sys
from seqcast.data import DataConfig, load_series
from seqcast.errors import InputError
size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (96 << 20), resource.RLIM_INFINITY))
try:
    load_series(sys.argv[1], DataConfig(wide=sys.argv[2] == "wide"))
except InputError as error:
    print(error)
    sys.exit(2)
"""


def _bounded_load(path, wide=False, stdin=None):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _BOUNDED, str(path), "wide" if wide else "long"], stdin=stdin,
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _one_line(path: Path, mib: int, head: bytes = b"ds,y\n2024-01-01,") -> Path:
    block = b"x" * (1 << 20)
    with open(path, "wb") as handle:
        handle.write(head)
        for _ in range(mib):
            handle.write(block)
    return path


def test_a_one_line_file_far_larger_than_memory_allows_is_refused_naming_the_line(tmp_path):
    """256 MiB in one field, read with 96 MiB of address space to spare: refused at its first
    block (it used to be parsed whole: about 10 times its size), from a file and from a pipe."""
    path = _one_line(tmp_path / "one_line.csv", 256)
    code, out, seconds = _bounded_load(path)
    assert code == 2 and f"one_line.csv: line 2: a field longer than {FIELD_LIMIT:,} characters" in out, out
    assert seconds < 10
    cat = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    try:
        code, out, _ = _bounded_load("-", stdin=cat.stdout)
    finally:
        cat.kill()
        cat.wait()
    assert code == 2 and "<stdin>: line 2: a field longer than" in out, out
    code, out, _ = _bounded_load(_one_line(tmp_path / "no_header.csv", 256, head=b""))
    assert code == 2 and "no_header.csv: line 1: a field longer than" in out, out
    packed = tmp_path / "one_line.csv.gz"  # about 1 MiB that inflates to 256 MiB: checked as it inflates
    with gzip.open(packed, "wb", compresslevel=1) as handle:
        handle.write(b"ds,y\n2024-01-01,")
        for _ in range(256):
            handle.write(b"x" * (1 << 20))
    code, out, _ = _bounded_load(packed)
    assert code == 2 and "one_line.csv.gz: line 2: a field longer than" in out, out


def test_a_field_just_past_the_limit_is_still_refused_by_the_readers():
    text = "ds,y,note\n2024-01-01,1.5," + "x" * (FIELD_LIMIT + 10) + "\n"
    with pytest.raises(InputError, match="line 2: field larger than field limit"):
        series_from_text("long_field.csv", text)


def test_more_columns_than_seqcast_reads_are_refused_from_the_header(tmp_path):
    """The column limit is checked on the header, before a row is read: 10,000 columns, or 100,000 with
    --wide (a column per time: 270 years of daily columns)."""
    path = tmp_path / "many.csv"
    with open(path, "w") as handle:
        handle.write("ds," + ",".join(f"c{i}" for i in range(MAX_COLUMNS)) + "\n")
        handle.write(("2024-01-01," + ",".join(["1.5"] * MAX_COLUMNS) + "\n") * 30)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"many\.csv: line 1: the header has more than 10,000 fields.*--wide"):
        load_series(str(path))
    assert time.monotonic() - started < 1
    days = [(datetime.date(1800, 1, 1) + datetime.timedelta(i)).isoformat() for i in range(MAX_WIDE_COLUMNS)]
    wide = tmp_path / "wide.csv"
    wide.write_text("country," + ",".join(days) + ",2300-01-01\ns1," + ",".join(["1"] * MAX_WIDE_COLUMNS) + ",1\n")
    with pytest.raises(InputError, match=r"wide\.csv: line 1: the header has more than 100,000 fields, the most "
                                         r"seqcast reads with --wide"):
        load_series(str(wide), DataConfig(wide=True))
    few = tmp_path / "wide_ok.csv"  # past the limit of a file with a row per time, within --wide's
    few.write_text("country," + ",".join(days[:MAX_COLUMNS + 1]) + "\n"
                   + "".join(f"s{r}," + ",".join(["1.5"] * (MAX_COLUMNS + 1)) + "\n" for r in range(2)))
    loaded = load_series(str(few), DataConfig(wide=True, freq="D"))
    assert [len(s.times) for s in loaded.series] == [MAX_COLUMNS + 1] * 2


def test_a_row_of_more_fields_than_seqcast_reads_is_refused_as_it_streams_past(tmp_path):
    many = ",".join(["7"] * (MAX_COLUMNS + 5))
    for name, row in (("plain.csv", many), ("quoted.csv", f'"{many}"')):  # quoted: no row is one line for sure
        path = tmp_path / name
        path.write_text("ds,y\n2024-01-01,1\n" + f"2024-01-02,{row}\n" + "2024-01-03,2\n")
        with pytest.raises(InputError, match=rf"{name}: line 3: a row has more than 10,000 fields"):
            load_series(str(path))


def test_a_long_row_of_the_wrong_width_is_named_before_the_file_is_read(tmp_path):
    """100,000 columns of 30 rows, a short row on line 26: named by the scan (it took 21 s and 1.8 GB of
    reading first), in the words of the readers."""
    days = [(datetime.date(1800, 1, 1) + datetime.timedelta(i)).isoformat() for i in range(99_999)]
    row = ",".join(["1.5"] * len(days))
    path = tmp_path / "wide.csv"
    with open(path, "w") as handle:
        handle.write("country," + ",".join(days) + "\n")
        for line in range(2, 32):
            handle.write(f"s{line}," + (row[4:] if line == 26 else row) + "\n")
    code, out, seconds = _bounded_load(path, wide=True)
    assert code == 2 and "wide.csv: line 26: expected 100000 fields, saw 99999" in out, out
    assert seconds < 10


def test_the_streaming_checks_agree_across_block_boundaries():
    """The same bytes fed in blocks of any size give the same verdict at the same line."""
    rows = ["t,a,b"] + [f"{i},1,2" for i in range(2, 40)]
    rows[20] = "20," + "y" * (4 * FIELD_LIMIT + 10) + ",2"
    data = ("\n".join(rows) + "\n").encode()
    for size in (4093, 4096, 8193, 65537, 1 << 20, len(data)):
        limits = LineLimits("f.csv")
        with pytest.raises(InputError, match=r"f\.csv: line 21: a field longer than"):
            for start in range(0, len(data), size):
                limits.feed(data[start : start + size])
    fine = ("t,a,b\n" + "1," + "z" * 9000 + ",3\n" + "2,1,2\n").encode()
    for size in (1, 5, 4096, 8191, len(fine)):
        limits = LineLimits("f.csv")
        for start in range(0, len(fine), size):
            limits.feed(fine[start : start + size])


# --max-parameters: a budget applied while the network is built


@pytest.mark.parametrize("name,key", [("gru", "num_layers"), ("lstm", "num_layers"), ("tcn", "num_levels"),
                                      ("transformer", "num_encoder_layers"),
                                      ("cnn_lstm_transformer", "num_encoder_layers"), ("nbeats", "num_layers")])
def test_a_network_past_the_parameter_budget_is_refused_in_well_under_a_second(name, key):
    create_model(name, 96, 24, 1)  # torch imported and warm
    started = time.monotonic()
    with pytest.raises(UsageError, match=rf"--max-parameters: {name} with {key}=100000 would have more than "
                                         r"100,000,000 parameters"):
        create_model(name, 96, 24, 1, {key: 100_000}, max_parameters=DEFAULT_MAX_PARAMETERS)
    assert time.monotonic() - started < 3  # at most 0.6 s on an idle machine; this one is shared, and it took minutes


def test_every_model_at_its_defaults_fits_the_default_budget_a_hundred_times_over():
    for name in list_models():
        model = create_model(name, 96, 24, 1, max_parameters=DEFAULT_MAX_PARAMETERS)
        parameters = sum(p.numel() for p in model.parameters())
        pieces = len(list(model.parameters())) + len(list(model.buffers())) + len(list(model.modules()))
        assert 100 * parameters <= DEFAULT_MAX_PARAMETERS and 20 * pieces <= 4_000, (name, parameters, pieces)


def test_fit_compare_and_tune_refuse_a_network_past_the_budget_with_exit_2_naming_the_option(invoke, tmp_path):
    started = time.monotonic()
    code, _, err = invoke("fit", SAMPLE, "-m", "gru", "-p", "num_layers=100000", "--output", tmp_path / "m.ckpt")
    assert code == 2 and "--max-parameters: gru with num_layers=100000" in err, err
    assert time.monotonic() - started < 30 and not (tmp_path / "m.ckpt").exists()
    code, _, err = invoke("compare", SAMPLE, "--models", "nlinear,tcn", "--max-parameters", "1000")
    assert code == 2 and "--max-parameters: " in err and "more than 1,000 parameters" in err, err
    code, _, err = invoke("fit", SAMPLE, "--max-parameters", "0", "--output", tmp_path / "m.ckpt")
    assert code == 2 and "--max-parameters" in err, err
    code, _, err = invoke("tune", SAMPLE, "--model", "gru", "-p", "num_layers=100000", "--trials", "1",
                          "--output", tmp_path / "t.ckpt")  # refused before any trial runs
    assert code == 2 and "--max-parameters: gru with" in err and "num_layers=100000 would have more" in err, err
