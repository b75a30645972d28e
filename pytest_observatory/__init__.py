"""pytest-observatory: long-running release checks for LLM gateways, as ordinary pytest tests."""

from __future__ import annotations

from .client import AsyncDeployment, SyncDeployment
from .errors import DeploymentError, DeploymentHTTPError
from .marker import CheckSpec
from .result import CheckResult, FirstFailure, LatencySummary, ModelSummary

__all__ = [
    "AsyncDeployment",
    "CheckResult",
    "CheckSpec",
    "DeploymentError",
    "DeploymentHTTPError",
    "FirstFailure",
    "LatencySummary",
    "ModelSummary",
    "SyncDeployment",
]
