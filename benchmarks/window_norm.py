"""Which per-window normalisation each model trains best with, judged on the validation split.

For every dataset, horizon and normalisation, runs `seqcast compare --split 8640,2880,2880` (the ETT
protocol of benchmarks/ett.py, univariate OT, seed 0) and writes a table of validation MSE (and,
for the record, test MSE) per model: last -> mean, with the number of cells where mean was lower on
validation. A model's declared `window_norm` (where it registers) is set from this table, never from the test column.

    python benchmarks/window_norm.py     # recurrent models at L=96 and the L=336 families (about 1 h)
    python benchmarks/window_norm.py --models gru --cells ETTh1:96 --norms last,mean,revin
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ett import LONG_LOOKBACK, ROOT, compare  # noqa: E402

SHORT = "rnn,lstm,gru,bilstm,stacked_lstm,lstm_attention"
LONG = "dlinear,nlinear,nbeats,nbeats_interpretable,cnn"
CELLS = "ETTh1:24,ETTh1:96,ETTh1:336,ETTh2:24,ETTh2:96,ETTh2:336"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=f"{SHORT},{LONG}")
    parser.add_argument("--cells", help=f"dataset:horizon pairs; default {CELLS}, with the L=336 families "
                                        "at H=96 only")
    parser.add_argument("--norms", default="last,mean")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "window_norm"))
    args = parser.parse_args()
    models, norms = args.models.split(","), args.norms.split(",")
    cells = [(c.split(":")[0], int(c.split(":")[1])) for c in (args.cells or CELLS).split(",")]
    rows = []
    for dataset, horizon in cells:
        for long in (False, True):
            group = [m for m in models if (m in LONG_LOOKBACK) == long]
            if not group or (long and horizon != 96 and not args.cells):
                continue
            for norm in norms:
                for r in compare(dataset, horizon, group, 336 if long else 96, 0, False, ("--window-norm", norm)):
                    rows.append({"dataset": dataset, "horizon": horizon, "model": r["model"], "window_norm": norm,
                                 "val_mse": r["val_mse"], "mse": r["mse"]})
                    print(f"{dataset} H={horizon} {r['model']:<22} {norm:<6} val {r['val_mse']:.4f} "
                          f"test {r['mse']:.4f}", flush=True)
                write(rows, Path(args.out), norms)


def write(rows: list[dict], out: Path, norms: list[str]) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out.with_suffix(".csv"), index=False)
    cells = sorted({(r["dataset"], r["horizon"]) for r in rows})
    base, lines = norms[0], []
    for other in norms[1:]:
        lines += [f"## validation MSE {base} -> {other} (test MSE in brackets); bold: {other} lower on validation", "",
                  "| model | " + " | ".join(f"{d} H={h}" for d, h in cells) + f" | {other} lower on val |",
                  "|---" * (len(cells) + 2) + "|"]
        for model in dict.fromkeys(frame["model"]):
            out_cells, wins, count = [], 0, 0
            for dataset, horizon in cells:
                pick = frame[(frame.model == model) & (frame.dataset == dataset) & (frame.horizon == horizon)]
                a, b = pick[pick.window_norm == base], pick[pick.window_norm == other]
                if a.empty or b.empty:
                    out_cells.append("")
                    continue
                a, b = a.iloc[0], b.iloc[0]
                win = b.val_mse < a.val_mse
                wins, count = wins + win, count + 1
                mark = "**" if win else ""
                out_cells.append(f"{a.val_mse:.4f} -> {mark}{b.val_mse:.4f}{mark} ({a.mse:.4f} -> {b.mse:.4f})")
            lines.append(f"| {model} | " + " | ".join(out_cells) + f" | {wins} of {count} |")
        lines.append("")
    out.with_suffix(".md").write_text("# Per-window normalisation on ETT (univariate OT, seed 0)\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
