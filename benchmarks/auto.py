"""`--model auto` against the best single model at defaults, on every panel of issue 28: one command.

    python benchmarks/auto.py                         # M4 Weekly, M3 (every frequency), ETTh1 H=24 and 96
    python benchmarks/auto.py --panels m3 --out /tmp/auto_m3
    python benchmarks/auto.py --merge m4=A.csv m4=B.csv m3=C.csv ett=D.csv   # a summary of runs done in parts

Runs the panel runners beside this file with auto and the strong single models (each at its defaults,
in the same run, so that times compare): `m4.py --models auto,SINGLES`, `m3.py --freq
yearly,quarterly,monthly,other --models auto,SINGLES` and `ett.py --datasets ETTh1 --horizons 24,96
--models auto,SINGLES` (test values; every choice inside auto is made on each fit's validation
windows). Then one table per target: auto's score (M4/M3 OWA, ETT test MSE) against the best single
model of the run, and auto's fit time against that model's. Each runner's own tables go to
--out_<panel>.md; the summary to --out.md and .csv (default benchmarks/results/auto).
"""

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SINGLES = {  # the strongest single models of the earlier tables (docs/benchmarks.md), each at its defaults
    "m4": "patchtst,nbeats,nlinear,tcn",
    "m3": "cnn,nlinear,nbeats,patchtst",
    "ett": "nlinear,tcn,patchtst",
}
M4_BEST_PUBLISHED = 0.739


def run(panel: str, out: Path, work: Path) -> Path:
    """Run one panel's runner; the path of its result table."""
    models = f"auto,{SINGLES[panel]}"
    target = Path(f"{out}_{panel}")
    command = {
        "m4": ["m4.py", "--models", models, "--out", str(target), "--work", str(work / "m4")],
        "m3": ["m3.py", "--freq", "yearly,quarterly,monthly,other", "--models", models, "--out", str(target),
               "--work", str(work / "m3")],
        "ett": ["ett.py", "--datasets", "ETTh1", "--horizons", "24,96", "--models", models, "--out", str(target)],
    }[panel]
    print("$ python", shlex.join(command), flush=True)
    subprocess.run([sys.executable, str(HERE / command[0]), *command[1:]], check=False)
    return Path(f"{target}.csv")


def read(panel: str, path: Path) -> pd.DataFrame:
    """A runner's result rows as (panel, cell, model, score, fit_s)."""
    table = pd.read_csv(path)
    if panel == "ett":
        table = table.assign(cell=table["dataset"] + " H=" + table["horizon"].astype(str), score=table["mse"],
                             fit_s=table["train_s"])
    else:
        table = table[table["status"] == "ok"]
        table = table.assign(cell=table["freq"] if panel == "m3" else "weekly", score=table["owa"])
    return table.assign(panel=panel)[["panel", "cell", "model", "score", "fit_s"]]


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per panel and cell: auto against the best single model of the same run."""
    lines = []
    for (panel, cell), group in rows.groupby(["panel", "cell"], sort=False):
        auto = group[group["model"] == "auto"]
        singles = group[group["model"] != "auto"].dropna(subset=["score"])
        if auto.empty or singles.empty:
            continue
        best = singles.loc[singles["score"].idxmin()]
        a = auto.iloc[0]
        lines.append({"panel": panel, "cell": cell, "auto": a["score"], "best_single": best["model"],
                      "best_score": best["score"], "auto_vs_best": a["score"] / best["score"],
                      "auto_fit_s": a["fit_s"], "best_fit_s": best["fit_s"], "time_ratio": a["fit_s"] / best["fit_s"]})
    return pd.DataFrame(lines)


def write(table: pd.DataFrame, out: Path, command: str) -> None:
    table.to_csv(f"{out}.csv", index=False)
    lines = [f"# auto against the best single model (`{command}`)", "",
             "| panel | cell | auto | best single | its score | auto / best | auto fit s | best fit s | time ratio |",
             "|---" * 9 + "|"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['panel']} | {r['cell']} | {r['auto']:.4f} | {r['best_single']} | {r['best_score']:.4f} | "
                     f"{r['auto_vs_best']:.3f} | {r['auto_fit_s']:.0f} | {r['best_fit_s']:.0f} | {r['time_ratio']:.2f} |")
    m4 = table[table["panel"] == "m4"]
    if not m4.empty:
        lines += ["", f"M4 Weekly: auto OWA {m4['auto'].iloc[0]:.3f} against the best published entry "
                      f"{M4_BEST_PUBLISHED}."]
    lines += ["", "Scores: OWA (M4, M3) and test MSE on z-scored values (ETT); lower is better. Times: the whole "
                  "default `fit` (for ETT, the compare run's training), one thread; tables merged from several runs "
                  "(--merge) compare times across runs, which shared the machine differently."]
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", default="m4,m3,ett", help="comma-separated among m4, m3, ett")
    parser.add_argument("--out", default=str(HERE / "results" / "auto"), help="PREFIX of the summary files")
    parser.add_argument("--work", default=str(HERE / "results" / "tmp" / "auto_work"))
    parser.add_argument("--merge", nargs="*", default=[], metavar="PANEL=CSV",
                        help="summarise runner tables written before (e.g. m4=results/m4_auto.csv), a later "
                             "table's row replacing an earlier one for the same cell and model; run nothing")
    args = parser.parse_args()
    out, work = Path(args.out).resolve(), Path(args.work).resolve()
    if args.merge:
        paths = [tuple(item.split("=", 1)) for item in args.merge]
    else:
        paths = [(p.strip(), run(p.strip(), out, work)) for p in args.panels.split(",") if p.strip()]
    rows = pd.concat([read(panel, Path(path)) for panel, path in paths])
    table = summary(rows.drop_duplicates(["panel", "cell", "model"], keep="last"))
    write(table, out, shlex.join(["python", *sys.argv]))
    print(Path(f"{out}.md").read_text())


if __name__ == "__main__":
    main()
