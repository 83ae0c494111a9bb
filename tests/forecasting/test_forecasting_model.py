"""Model quality against seasonal naive, direct multi-step prediction, artifacts, training CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestRegressor

from contract.model_files import install_model_file
from forecasting import (
    ArtifactError,
    ArtifactIntegrityError,
    FeatureSpec,
    TooFewRowsError,
    dumps,
    fit,
    load_bytes,
    load_file,
    sha256_hex,
)
from forecasting.evaluate import evaluate_holdout, seasonal_naive
from forecasting.train import main
from tests.forecasting.conftest import SAMPLE, STEP

SPEC = FeatureSpec(lags=tuple(range(1, 337)), step_ns=STEP, horizon=48)


@pytest.fixture(scope="module")
def model(series):
    t, v = series
    return fit(t, v, SPEC, target="demand_mw")


def test_holdout_error_beats_both_seasonal_naive_baselines(series):
    t, v = series
    _, scores = evaluate_holdout(t, v, SPEC, target="demand_mw", holdout_rows=672)
    assert scores["model"].mae < 0.8 * scores["seasonal_naive_weekly"].mae
    assert scores["model"].mae < scores["seasonal_naive_daily"].mae
    assert scores["model"].mape_percent < 2.0


def test_seasonal_naive_repeats_the_last_season():
    values = np.arange(10, dtype=np.float64)
    pred = seasonal_naive(values, np.array([6]), horizon=5, season=3)
    assert pred.tolist() == [[3.0, 4.0, 5.0, 3.0, 4.0]]


def test_predict_gives_the_next_steps_on_the_grid_and_a_prefix_for_shorter_requests(model, series):
    t, v = series
    origin = model.prepare(t, v)
    times, values = model.predict(origin, 48)
    assert times.tolist() == (t[-1] + STEP * np.arange(1, 49)).tolist()
    assert np.all(np.isfinite(values))
    assert values.min() > 0.5 * v.min() and values.max() < 1.5 * v.max()
    _, first = model.predict(origin, 3)
    np.testing.assert_array_equal(first, values[:3])


def test_prepare_uses_only_the_tail_and_refuses_short_series(model, series):
    t, v = series
    full = model.prepare(t, v)
    tail = model.prepare(t[-336:], v[-336:])
    np.testing.assert_array_equal(full.row, tail.row)
    with pytest.raises(TooFewRowsError):
        model.prepare(t[-335:], v[-335:])


def test_predict_rejects_lengths_outside_the_horizon(model, series):
    origin = model.prepare(*series)
    for steps in (0, 49):
        with pytest.raises(ValueError, match="between 1 and 48"):
            model.predict(origin, steps)


def test_artifact_round_trip_predicts_identically(model, series, tmp_path):
    data = dumps(model)
    loaded = load_bytes(data, sha256=sha256_hex(data))
    assert loaded.version == model.version and loaded.spec == model.spec
    origin = model.prepare(*series)
    np.testing.assert_array_equal(model.predict(origin, 48)[1], loaded.predict(origin, 48)[1])
    name, digest = install_model_file(tmp_path, data)
    assert name == f"model-{digest}.skops"
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o640
    assert load_file(tmp_path / name, sha256=None).version == model.version


def test_artifact_with_another_digest_is_refused(model, tmp_path):
    data = dumps(model)
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        load_bytes(data, sha256="0" * 64)
    name, _ = install_model_file(tmp_path, data)
    tampered = tmp_path / name
    tampered.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ArtifactError):
        load_file(tampered, sha256=None)  # digest taken from the file name


def test_artifact_with_untrusted_types_is_refused():
    payload = {"format": 1, "estimator": RandomForestRegressor(n_estimators=1)}
    data = sio.dumps(payload)
    with pytest.raises(ArtifactError):
        load_bytes(data, sha256=None)


def test_garbage_is_an_artifact_error_not_a_crash():
    with pytest.raises(ArtifactError, match="cannot read"):
        load_bytes(b"not a zip file", sha256=None)


def test_train_command_writes_a_verified_artifact_and_reports_baselines(tmp_path, capsys):
    out = tmp_path / "model.skops"
    report = tmp_path / "report.json"
    code = main(["--input", str(SAMPLE), "--output", str(out), "--report", str(report)])
    assert code == 0
    data = out.read_bytes()
    sidecar = (tmp_path / "model.skops.sha256").read_text().split()
    assert sidecar == [sha256_hex(data), "model.skops"]
    parsed = json.loads(report.read_text())
    assert parsed["sha256"] == sha256_hex(data)
    assert set(parsed["scores"]) == {"model", "seasonal_naive_daily", "seasonal_naive_weekly"}
    assert load_bytes(data, sha256=parsed["sha256"]).min_rows == 336
    assert "seasonal_naive_weekly" in capsys.readouterr().out


def test_train_command_rejects_a_missing_column(tmp_path, capsys):
    code = main(["--input", str(SAMPLE), "--output", str(tmp_path / "m"), "--target", "nope"])
    assert code == 2
    assert "column 'nope'" in capsys.readouterr().err


def test_predictions_are_bit_for_bit_the_pipelines(model, series):
    """The forecaster reads the fitted arrays once and skips scikit-learn's per-call checks;
    its output must still be exactly the pipeline's, for the window and for extreme rows."""
    t, v = series
    rng = np.random.default_rng(7)
    for end in rng.integers(SPEC.min_rows, len(v), size=25):
        origin = model.prepare(t[:end], v[:end])
        _, values = model.predict(origin, 48)
        expected = model.estimator.predict(origin.row)[0]
        assert values.tobytes() == expected.tobytes()
    row = rng.normal(0, 1e300, size=(1, SPEC.n_features))
    with np.errstate(all="ignore"):
        direct = model.predict(type(origin)(row=row, last_time_ns=0), 48)[1]
        assert direct.tobytes() == model.estimator.predict(row)[0].tobytes()
