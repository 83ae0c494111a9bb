"""Forecasting shared by the web workers and the daemon: features, model, artifacts.

Public API::

    from forecasting import FeatureSpec, Forecaster, Origin, fit, load_bytes, load_file
"""

from forecasting.artifact import (
    TRUSTED_TYPES,
    dumps,
    load_bytes,
    load_file,
    sha256_hex,
)
from forecasting.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ForecastingError,
    IrregularSeriesError,
    TooFewRowsError,
)
from forecasting.features import FeatureSpec, regularize
from forecasting.model import Forecaster, Origin, fit

__all__ = [
    "TRUSTED_TYPES",
    "ArtifactError",
    "ArtifactIntegrityError",
    "FeatureSpec",
    "Forecaster",
    "ForecastingError",
    "IrregularSeriesError",
    "Origin",
    "TooFewRowsError",
    "dumps",
    "fit",
    "load_bytes",
    "load_file",
    "regularize",
    "sha256_hex",
]
