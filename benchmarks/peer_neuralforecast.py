"""The peer's side of benchmarks/e2e_vs_peer.py: neuralforecast at its defaults on the same protocol.

Run with a Python that has neuralforecast installed in a throwaway virtual environment (never a
project dependency). ETTh1 OT, z-scored with train-row statistics, lookback 96, horizon 24, batch 32,
300 steps, MSE loss, seed 1, early stopping off; forecasts every stride-1 test window (2857 at H=24)
and writes them to a CSV, then prints the test MSE on one line as JSON.

    PEER_PYTHON benchmarks/peer_neuralforecast.py MODEL DATA.csv OUT.csv
"""

import json
import logging
import sys
import time

started = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from neuralforecast import NeuralForecast  # noqa: E402
from neuralforecast.losses.pytorch import MSE  # noqa: E402
from neuralforecast.models import GRU, LSTM, RNN  # noqa: E402

logging.disable(logging.WARNING)
LOOKBACK, HORIZON, TRAIN, VAL, TEST = 96, 24, 8640, 2880, 2880
name, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
raw = pd.read_csv(path)
ot = raw["OT"].to_numpy()
mean, std = ot[:TRAIN].mean(), ot[:TRAIN].std()
frame = pd.DataFrame({"unique_id": "OT", "ds": pd.to_datetime(raw["date"]), "y": (ot - mean) / std}).iloc[: TRAIN + VAL + TEST]
model = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[name](
    h=HORIZON, input_size=LOOKBACK, max_steps=300, batch_size=32, loss=MSE(), random_seed=1,
    early_stop_patience_steps=-1, logger=False, enable_progress_bar=False, enable_model_summary=False)
nf = NeuralForecast(models=[model], freq="h")
fit_started = time.perf_counter()
nf.fit(frame.iloc[:TRAIN])
fit_s = time.perf_counter() - fit_started
predict_started = time.perf_counter()
windows = TEST - HORIZON + 1
# Forecast each test origin from its own lookback (no refit): one predict call over many ids.
history = frame["y"].to_numpy()
origins = np.arange(TRAIN + VAL, TRAIN + VAL + windows)
batch = pd.concat([pd.DataFrame({"unique_id": i, "ds": frame["ds"].iloc[o - LOOKBACK:o].to_numpy(),
                                 "y": history[o - LOOKBACK:o]}) for i, o in enumerate(origins)])
forecast = nf.predict(df=batch)
predict_s = time.perf_counter() - predict_started
column = [c for c in forecast.columns if c not in ("unique_id", "ds", "cutoff")][0]
pred = forecast.sort_values(["unique_id", "ds"])[column].to_numpy().reshape(windows, HORIZON)
actual = np.stack([history[o:o + HORIZON] for o in origins])
forecast.to_csv(out, index=False)
print(json.dumps({"model": name, "mse": float(np.mean((pred - actual) ** 2)), "fit_s": fit_s,
                  "predict_s": predict_s, "windows": windows}))
