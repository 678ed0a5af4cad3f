"""The CSV reader under a memory limit: small files shaped to make a reader allocate far more than
they hold (integer steps with huge jumps, dates centuries apart, a tiny --freq over years, huge or
many fields) either load or raise SeqcastError (exit 2), inside 1 GiB of address space and a time
bound, in a real subprocess so that a blow-up cannot take the test run down with it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FUZZ = textwrap.dedent('''
    import random, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    import numpy as np
    from seqcast.data import DataConfig, series_from_text
    from seqcast.errors import SeqcastError

    rng = random.Random(20261201)
    def times(n):
        kind = rng.choice(["jump", "dates", "centuries", "steps", "minutes", "plain", "plain"])
        if kind == "plain":
            return [f"2024-01-01 {h:02d}:00" for h in range(min(n, 24))]
        if kind == "jump":
            return [str(i) for i in range(n - 1)] + [str(rng.choice([3 * 10**8, 10**12, 2**62]))]
        if kind == "dates":
            return [f"2024-01-{d:02d}" for d in range(1, n)] + [rng.choice(["9999-12-31", "1000-01-01"])]
        if kind == "centuries":
            return [f"{y:04d}-01-01" for y in sorted(rng.sample(range(1000, 9999), n))]
        if kind == "minutes":
            return [f"2024-01-01 00:{m:02d}" for m in range(n - 1)] + ["2224-01-01 00:00"]
        return [str(i * rng.choice([1, 7, 10**9])) for i in range(n)]
    def value():
        return rng.choice(["1.5", "2", "NA", "", "1e308", "-1e308", "1,5", "x" * rng.choice([1, 10**5]), "0"])
    outcomes = {"loaded": 0, "refused": 0}
    started = time.monotonic()
    for case in range(300):
        stamps = times(rng.randint(2, 60))
        n = len(stamps)
        rows = [f"{t},{value() if rng.random() < 0.03 else rng.random()}" for t in stamps]
        text = "step,y\\n" + "\\n".join(rows) + "\\n"
        config = DataConfig(freq=rng.choice([None, None, "1us", "1", "h", "B", "MS"]),
                            fill=rng.choice(["none", "ffill", "interpolate", "zero"]))
        try:
            series = series_from_text("fuzz.csv", text, config)
            assert all(np.isfinite(s.values).all() for s in series.series)
            assert sum(len(s.times) for s in series.series) <= 100 * n + 10_000
            outcomes["loaded"] += 1
        except SeqcastError as error:
            assert error.exit_code == 2 and str(error).startswith(("fuzz.csv", "--freq")), str(error)
            outcomes["refused"] += 1
    print(outcomes, round(time.monotonic() - started, 1))
''')


def test_small_files_shaped_to_blow_up_the_reader_load_or_exit_2_within_bounds():
    result = subprocess.run([sys.executable, "-c", FUZZ], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = eval(result.stdout.split("}")[0] + "}")
    assert outcomes["loaded"] > 10 and outcomes["refused"] > 10, outcomes
