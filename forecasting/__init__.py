"""Forecasting shared by the web workers and the daemon: frequency, gaps, features, model,
artifacts.

Public API::

    from forecasting import Forecaster, Frequency, Origin, infer_frequency, load_bytes
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
from forecasting.frequency import Frequency, infer_frequency
from forecasting.gaps import regularize
from forecasting.model import Forecaster, Origin, Tier

__all__ = [
    "TRUSTED_TYPES",
    "ArtifactError",
    "ArtifactIntegrityError",
    "Forecaster",
    "ForecastingError",
    "Frequency",
    "IrregularSeriesError",
    "Origin",
    "Tier",
    "TooFewRowsError",
    "dumps",
    "infer_frequency",
    "load_bytes",
    "load_file",
    "regularize",
    "sha256_hex",
]
