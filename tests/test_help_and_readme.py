"""The help texts and the README say what the code does: defaults read from the code, not retyped."""

import re
from pathlib import Path

import pytest

from seqcast.data.columns import ENTITY_NAMES, ID_NAMES
from seqcast.registry import DEFAULT_LR, get_spec, list_models
from seqcast.windows import default_horizon_lookback

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
# The frequency words the help and the README use, with an alias of each.
FREQUENCIES = {"minutes": "15min", "hourly": "h", "daily": "D", "business days": "B", "weekly": "W-SUN",
               "monthly": "MS", "quarterly": "QS-JAN", "yearly": "YS-JAN", "integer steps": "1"}


def flat(text: str) -> str:
    return " ".join(text.split())


def help_of(invoke, *command) -> str:
    code, out, err = invoke(*command, "--help")
    assert code == 0, err
    return flat(out)


def test_learning_rate_defaults_per_family_agree_with_the_models(invoke):
    lower = sorted(name for name in list_models()
                   if get_spec(name).capabilities.lr != DEFAULT_LR)
    assert lower, "some models declare a lower learning rate"
    names = ", ".join(lower[:-1]) + " and " + lower[-1]
    assert f"1e-3 for {names}, 3e-3 for the others" in help_of(invoke, "fit")
    assert f"lr 3e-3 (1e-3 for {', '.join(f'`{n}`' for n in lower[:-1])} and `{lower[-1]}`)" in flat(README)


@pytest.mark.parametrize("option", ["--lookback", "--horizon"])
def test_window_defaults_by_frequency_agree_with_the_code(invoke, option):
    text = help_of(invoke, "fit")
    which = 1 if option == "--lookback" else 0
    for word, alias in FREQUENCIES.items():
        assert f"{word} {default_horizon_lookback(alias)[which]}" in text, (option, word)


def test_readme_lists_the_same_window_defaults():
    line = flat(README)[flat(README).index("Defaults by frequency (lookback/horizon):"):][:400]
    for word, alias in FREQUENCIES.items():
        horizon, lookback = default_horizon_lookback(alias)
        assert re.search(rf"{word}[^;]*?{lookback} ?/ ?{horizon}", line), (word, lookback, horizon)


def test_id_column_names_agree(invoke):
    text = help_of(invoke, "fit")
    for name in ID_NAMES + ENTITY_NAMES:
        assert name in text and f"`{name}`" in README, name


def test_compare_metric_default_is_documented(invoke):
    text = help_of(invoke, "compare")
    assert "Default: mase (mse with --split)" in text
    assert "`--metric` defaults to `mase` (`mse` with `--split`)" in flat(README)


def test_shell_completion_is_on_and_global_flags_go_anywhere(invoke):
    assert "--install-completion" in help_of(invoke)
    assert "go anywhere on the line" in flat(README)
