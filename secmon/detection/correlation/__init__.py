"""Sigma correlation rules: loaded into plain data, then evaluated over event-time windows.

:mod:`~secmon.detection.correlation.loading` reads and resolves them,
:mod:`~secmon.detection.correlation.matching` runs their windows. Their definition
(:class:`CorrelationRule` and its parts) lives beside the base rules' in
:mod:`secmon.detection.rules`, since a loaded :class:`~secmon.detection.rules.RuleSet` holds both.
"""

from __future__ import annotations

from secmon.detection.correlation.loading import load_correlations
from secmon.detection.correlation.matching import CorrelationEngine, CorrelationHit
from secmon.detection.rules import CorrelationCondition, CorrelationRule, CorrelationType, Threshold

__all__ = [
    "CorrelationCondition",
    "CorrelationEngine",
    "CorrelationHit",
    "CorrelationRule",
    "CorrelationType",
    "Threshold",
    "load_correlations",
]
