"""The global model on the sample series: accuracy against the baselines, short histories
served by shallower tiers, conformal quantiles, artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestRegressor

from contract.model_files import install_model_file
from forecasting import (
    ArtifactError,
    ArtifactIntegrityError,
    TooFewRowsError,
    dumps,
    load_bytes,
    load_file,
    sha256_hex,
)
from forecasting.train import Options, train_model
from tests.forecasting.conftest import STEP


@pytest.fixture(scope="module")
def trained(sample_frame):
    return train_model(sample_frame, options=Options(candidates=("ridge",)))


@pytest.fixture(scope="module")
def model(trained):
    return trained[0]


def test_holdout_beats_the_baselines_and_the_interval_covers_about_80_percent(trained):
    _, report = trained
    holdout = report["holdout"]
    assert holdout["model"]["mase"] < 0.5 * holdout["seasonal_naive"]["mase"]
    assert holdout["model"]["mae"] < holdout["naive"]["mae"]
    assert 0.7 <= report["coverage_80"] <= 0.9  # measured 0.892
    assert report["frequency"] == "30min" and report["tiers"] == [336, 96]


def test_predict_gives_the_next_steps_and_a_prefix_for_shorter_requests(model, series):
    t, v = series
    origin = model.prepare(t, v)
    times, values = model.predict(origin, 48)
    assert times.tolist() == (t[-1] + STEP * np.arange(1, 49)).tolist()
    assert values.min() > 0.5 * v.min() and values.max() < 1.5 * v.max()
    np.testing.assert_array_equal(model.predict(origin, 3)[1], values[:3])
    for steps in (0, 49):
        with pytest.raises(ValueError, match="between 1 and 48"):
            model.predict(origin, steps)


@pytest.mark.parametrize(
    ("rows", "method"),
    [(4032, "ridge-l336"), (336, "ridge-l336"), (335, "ridge-l96"), (96, "ridge-l96")],
)
def test_short_histories_are_served_by_the_shallower_tier(model, series, rows, method):
    t, v = series
    origin = model.prepare(t[-rows:], v[-rows:])
    assert model.method(origin) == method
    assert np.isfinite(model.predict(origin, 48)[1]).all()


def test_below_the_minimum_the_error_names_it(model, series):
    t, v = series
    assert model.min_rows == 96
    with pytest.raises(TooFewRowsError) as exc:
        model.prepare(t[-95:], v[-95:])
    assert exc.value.needed == 96 and exc.value.got == 95


@settings(max_examples=100, deadline=None)
@given(
    levels=st.lists(st.floats(0.001, 0.999), min_size=1, max_size=9, unique=True),
    end=st.integers(96, 4032),
)
def test_quantiles_never_decrease_with_the_level(model, series, levels, end):
    t, v = series
    origin = model.prepare(t[:end], v[:end])
    _, point = model.predict(origin, 48)
    bounds = model.quantiles(origin.tier, origin.scale, point, levels)
    order = np.argsort(levels)
    assert (np.diff(bounds[order], axis=0) >= 0).all()
    low, high = model.quantiles(origin.tier, origin.scale, point, [0.1, 0.9])
    assert (low <= high).all() and ((low <= point) | (high >= point)).all()


def test_artifact_round_trip_predicts_identically(model, series, tmp_path):
    data = dumps(model)
    loaded = load_bytes(data, sha256=sha256_hex(data))
    assert loaded.version == model.version and loaded.frequency == model.frequency
    assert (loaded.time_col, loaded.target, loaded.series_col) == ("time", "demand_mw", None)
    origin = model.prepare(*series)
    np.testing.assert_array_equal(model.predict(origin, 48)[1], loaded.predict(origin, 48)[1])
    name, digest = install_model_file(tmp_path, data)
    assert name == f"model-{digest}.skops"
    assert load_file(tmp_path / name, sha256=None).version == model.version


def test_artifact_with_another_digest_is_refused(model, tmp_path):
    data = dumps(model)
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        load_bytes(data, sha256="0" * 64)
    name, _ = install_model_file(tmp_path, data)
    tampered = tmp_path / name
    tampered.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ArtifactError):
        load_file(tampered, sha256=None)


def test_format_1_artifacts_are_refused_with_a_retrain_message():
    data = sio.dumps({"format": 1, "lags": [1, 2]})
    with pytest.raises(ArtifactError, match=r"format 1 .*retrain it with python -m forecasting"):
        load_bytes(data, sha256=None)


def test_artifact_with_untrusted_types_is_refused():
    forest = RandomForestRegressor(n_estimators=1).fit([[0.0], [1.0]], [0.0, 1.0])
    data = sio.dumps({"format": 2, "estimator": forest})
    with pytest.raises(ArtifactError, match="untrusted"):
        load_bytes(data, sha256=None)


def test_garbage_is_an_artifact_error_not_a_crash():
    with pytest.raises(ArtifactError, match="cannot read"):
        load_bytes(b"not a zip file", sha256=None)


def test_ridge_predictions_are_bit_for_bit_the_pipelines(model, series):
    t, v = series
    rng = np.random.default_rng(7)
    for end in rng.integers(96, len(v), size=20):
        origin = model.prepare(t[:end], v[:end])
        tier = model.tiers[origin.tier]
        expected = tier.estimator.predict(origin.rows)[0]
        _, values = model.predict(origin, 48)
        np.testing.assert_array_equal(values, origin.level + origin.scale * expected)


def test_a_constant_series_is_forecast_as_itself(model):
    t = pd.date_range("2020-01-06", periods=400, freq="30min").as_unit("ns").asi8
    origin = model.prepare(t, np.full(400, 123.0))
    _, values = model.predict(origin, 48)
    np.testing.assert_allclose(values, 123.0, rtol=0.05)
