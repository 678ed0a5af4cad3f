"""Numbers from text, and the decimal separator: the only place that decides it.

The separator is decided once per file from what the numbers look like, never from the delimiter:
a value that reads only one way (1,5 or 1.234,5; 1.5 or 1,234.5; more than three decimals; a
fraction on a value of 1000 and more) proves it; two proofs that disagree are an error. Numbers the
fast reader typed were written with a decimal point (a comma would have left them text). When
nothing proves a separator, '.' is used and ``decimal_note`` says how a value that reads two ways
(1.234, 1,234) was taken. Every function is vectorised over a column and raises ``InputError``
naming the file, line, column and value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .cells import MISSING, is_text, stripped
from .table import Table

# Number shapes, matched against whole stripped fields. A leading group of 1-3 digits that does not
# start with 0 followed by groups of exactly 3 digits could be thousands grouping; anything else with
# a single separator can only be a decimal separator.
_SIGN = r"[+-]?"
_EXP = r"(?:[eE][+-]?\d+)?"
_POINT_GROUPED = rf"{_SIGN}[1-9]\d{{0,2}}(?:\.\d{{3}})+"
_COMMA_GROUPED = rf"{_SIGN}[1-9]\d{{0,2}}(?:,\d{{3}})+"
_COMMA_PROOF = (rf"(?!{_COMMA_GROUPED}\Z)(?:{_SIGN}\d*,\d+{_EXP}|{_SIGN}[1-9]\d{{0,2}}(?:\.\d{{3}})+,\d+"
                rf"|{_SIGN}[1-9]\d{{0,2}}(?:\.\d{{3}}){{2,}})")  # 1,5  1.234,5  1.234.567
_POINT_PROOF = (rf"(?!{_POINT_GROUPED}\Z)(?:{_SIGN}\d*\.\d+{_EXP}|{_SIGN}[1-9]\d{{0,2}}(?:,\d{{3}})+\.\d+"
                rf"|{_SIGN}[1-9]\d{{0,2}}(?:,\d{{3}}){{2,}})")  # 1.5  1,234.5  1,234,567
_AMBIGUOUS_POINT = rf"{_SIGN}[1-9]\d{{0,2}}\.\d{{3}}"  # 1.234: a decimal point, or 1234 grouped
_AMBIGUOUS_COMMA = rf"{_SIGN}[1-9]\d{{0,2}},\d{{3}}"  # 1,234: 1234 grouped, or a decimal comma
_NUMBERISH = rf"{_SIGN}[\d.,]*\d[\d.,]*{_EXP}"


def looks_numeric(raw: np.ndarray) -> np.ndarray:
    """Per value: a number in either decimal convention, or a missing-value marker."""
    text = stripped(raw)
    return _matches(text, _NUMBERISH) | text.str.lower().isin(MISSING).to_numpy()


def _distinct(text: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes and distinct values: real columns repeat values, so each distinct one is matched once."""
    codes, uniques = pd.factorize(text)
    return codes, pd.Series(uniques, dtype=object)


def _matches(values: pd.Series, pattern: str) -> np.ndarray:
    return values.str.fullmatch(pattern).to_numpy(dtype=bool)


def _decimal_in_text(name: str, columns: dict[str, np.ndarray], lines: np.ndarray) -> str | None:
    """The decimal separator ('.' or ',') the numbers in ``columns`` prove; None when none proves one.

    Only columns where at least half the values look like numbers give evidence. A column holding
    both decimal commas and decimal points, or two columns that disagree, is an error.
    """
    found: dict[str, tuple[str, int]] = {}  # separator -> (column, row) of its first proof
    for column, raw in columns.items():
        codes, values = _distinct(stripped(raw))
        present = ~values.str.lower().isin(MISSING).to_numpy()[codes]
        if not present.any() or _matches(values, _NUMBERISH)[codes][present].mean() < 0.5:
            continue
        comma, point = _matches(values, _COMMA_PROOF)[codes], _matches(values, _POINT_PROOF)[codes]
        if comma.any() and point.any():
            c, p = int(np.argmax(comma)), int(np.argmax(point))
            raise InputError(
                f"{name}: column {column!r} has both decimal commas (line {lines[c]}: {raw[c]!r}) and decimal "
                f"points (line {lines[p]}: {raw[p]!r}); write one, or say which with --decimal . or --decimal ,")
        for separator, proof in ((",", comma), (".", point)):
            if proof.any() and separator not in found:
                found[separator] = (column, int(np.argmax(proof)))
    if len(found) == 2:
        (cc, c), (pc, p) = found[","], found["."]
        raise InputError(
            f"{name}: column {cc!r} has decimal commas (line {lines[c]}: {columns[cc][c]!r}) but column {pc!r} has "
            f"decimal points (line {lines[p]}: {columns[pc][p]!r}); say which the file uses with --decimal . or "
            "--decimal ,")
    return next(iter(found), None)


def _decimal_note(raw: np.ndarray, column: str) -> str | None:
    """What a value that reads two ways was taken as, when no number in the file proved the separator."""
    text = stripped(raw)
    point, comma = (_matches(text, p) for p in (_AMBIGUOUS_POINT, _AMBIGUOUS_COMMA))
    if point.any():
        v = text.iloc[int(np.argmax(point))]
        read = f"{v!r} as {v} (a decimal point), not {v.replace('.', '')} (a dot grouping thousands)"
    elif comma.any():
        v = text.iloc[int(np.argmax(comma))]
        read = (f"{v!r} as {v.replace(',', '')} (a comma grouping thousands), not {v.replace(',', '.')} "
                "(a decimal comma)")
    else:
        return None
    return (f"column {column!r}: no number in the file shows its decimal separator; read {read}. "
            "If the file writes decimal commas (1.234,5), pass --decimal ,")


def _exactly(text: pd.Series, read: np.ndarray) -> np.ndarray:
    """``read`` (what pandas made of ``text``) with each number it read parsed again to the nearest double:
    pandas 2's parser can miss the last bit (21.173999786376953 read as ...957), numpy's does not."""
    ok = np.isfinite(read)
    if ok.any():
        try:
            read = read.copy()
            read[ok] = np.asarray(text.to_numpy(dtype=object)[ok], dtype=str).astype(np.float64)
        except ValueError:  # a form pandas reads and numpy does not: pandas' reading stands
            pass
    return read


def parse_numbers(raw: np.ndarray, column: str, lines: np.ndarray, name: str, decimal: str = ".",
                  forced: bool = False) -> np.ndarray:
    """Strings -> float64, NaN where a value is missing; a non-number, infinity, or a value that
    contradicts the decimal separator is an error."""
    codes, text = _distinct(stripped(raw))
    missing = text.str.lower().isin(MISSING).to_numpy()
    if decimal == ",":
        contradicts, kind = _matches(text, _POINT_PROOF), "a decimal point (as 1,234.5 does)"
        cleaned = text.str.replace(r"^([+-]?\d{1,3}(?:\.\d{3})+)(?=,|$)", lambda m: m.group(1).replace(".", ""), regex=True)
        cleaned = cleaned.str.replace(",", ".", regex=False)
    else:
        contradicts, kind = _matches(text, _COMMA_PROOF), "a decimal comma (as 1.234,5 does)"
        cleaned = text.str.replace(r"^([+-]?\d{1,3}(?:,\d{3})+)(?=\.|$)", lambda m: m.group(1).replace(",", ""), regex=True)
    distinct = pd.to_numeric(cleaned.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
    distinct = _exactly(cleaned, distinct)
    bad = ((np.isnan(distinct) & ~missing) | contradicts)[codes]
    if bad.any():
        i = int(np.argmax(bad))
        where = f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r}"
        if contradicts[codes[i]]:
            said = f"the decimal separator is {decimal!r} (given with --decimal, or as the checkpoint recorded it)" \
                if forced else \
                f"the file's numbers are read with {decimal!r} as the decimal separator"
            raise InputError(f"{where} reads only with {kind}, but {said}; say which the file uses with --decimal . "
                             "or --decimal ,")
        raise InputError(f"{where} is not a number")
    values = distinct[codes]
    infinite = np.isinf(values)
    if infinite.any():
        i = int(np.argmax(infinite))
        raise InputError(f"{name}: line {lines[i]}, column {column!r}: {raw[i]!r} is not a finite number")
    return values


def decimal_for(table: Table, given: str | None, evidence: list[str], numbers: list[str]) -> tuple[str, str | None]:
    """The decimal separator to read the ``numbers`` columns with, and the one the file proves.

    ``given`` (--decimal, or as a checkpoint recorded it) is used as is; else the separator the
    ``evidence`` columns prove (``_proven_decimal``), else '.'. The second value is the proven one (None
    when given or when nothing proved one). Read with a comma, the ``numbers`` columns are read again as
    text: the fast reader typed them with a decimal point."""
    if table.typed:  # Parquet: typed numbers have no separator; only its text columns can show one
        evidence = [c for c in evidence if is_text(table.columns[c])]
    proven = None if given else _proven_decimal(table, evidence)
    decimal = given or proven or "."
    if decimal == "," and not table.typed:
        table.as_text(numbers)
    return decimal, proven


def _proven_decimal(table: Table, candidates: list[str]) -> str | None:
    """The decimal separator the numbers in the ``candidates`` columns prove; None when none proves one.

    Numbers the C reader typed were written with a decimal point (a comma would have left them text);
    a value with more than three decimals, or of 1000 and more with a fraction, proves it, as does any
    proof in the text of its first block (12.5). A typed column that proves nothing so, or a file where
    some column proves a comma, is judged from its whole text."""
    columns = table.columns
    floats = [c for c in candidates if not is_text(columns[c]) and np.asarray(columns[c]).dtype.kind == "f"]
    unproven = [c for c in floats if not _proves_point(columns[c]) and not _head_proves_point(table, c)]
    table.as_text(unproven)
    text = [c for c in candidates if is_text(columns[c])]
    found = _decimal_in_text(table.name, {c: columns[c] for c in text}, table.lines)
    if found == ",":
        table.as_text(candidates)
        return _decimal_in_text(table.name, {c: columns[c] for c in candidates}, table.lines)
    return found or ("." if len(unproven) < len(floats) else None)


def _head_proves_point(table: Table, column: str) -> bool:
    """Whether the first block of a typed column, as written, proves a decimal point (12.5, 0.25: the
    typed value cannot tell 12.5 from 12.500): then the whole column need not be read again as text."""
    return _decimal_in_text(table.name, {column: table.head_text(column)}, table.lines) == "."


def _proves_point(values: np.ndarray) -> bool:
    for start in range(0, len(values), 1 << 16):  # a proof is usually in the first rows: look in blocks
        v = values[start : start + (1 << 16)]
        v = v[np.isfinite(v)]
        thousandths = v * 1000
        fraction = np.abs(thousandths - np.round(thousandths)) > 1e-9 * np.maximum(1.0, np.abs(thousandths))
        if (fraction | ((np.abs(v) >= 1000) & (v != np.round(v)))).any():
            return True
    return False


def column_numbers(table: Table, column: str, decimal: str, forced: bool) -> np.ndarray:
    """A column of numbers (a target or a covariate) as float64, NaN where missing; a typed column that
    holds an infinity is read again as text so that the error quotes it. ``forced``: the separator was
    given (--decimal, or as a checkpoint recorded it), which the error for a value contradicting it says."""
    values = table.columns[column]
    if not is_text(values) and np.asarray(values).dtype.kind in "fiu" and (decimal == "." or table.typed):
        numbers = np.asarray(values, dtype=np.float64)
        if not np.isinf(numbers).any():
            return numbers
    return parse_numbers(table.text(column), column, table.lines, table.name, decimal, forced=forced)


def ambiguity_notes(table: Table, targets: list[str]) -> list[str]:
    """For each target read as text, what a value that reads two ways (1.234, 1,234) was taken as: for
    a file where no number proved the separator. Typed numbers are integers then: nothing to note."""
    columns = table.columns
    return [n for n in (None if not is_text(columns[t]) else _decimal_note(columns[t], t) for t in targets) if n]


def static_number(text: str) -> float:
    """One value of a static column that ``looks_numeric``, with either decimal separator (1.5 or 1,5):
    a static column's numbers are not held to the separator of the file's other numbers."""
    return float(text.replace(",", "."))


def as_numbers(raw: np.ndarray, decimal: str) -> np.ndarray | None:
    """The column as float64 if every value is a number (or missing) read with ``decimal``; else None."""
    if not is_text(raw):  # numbers as the fast reader typed them (decimal point), or timestamps
        kind = np.asarray(raw).dtype.kind
        return np.asarray(raw, dtype=np.float64) if kind in "fiu" and decimal == "." else None
    try:
        return parse_numbers(raw, "", np.zeros(len(raw), dtype=int), "", decimal)
    except InputError:
        return None
