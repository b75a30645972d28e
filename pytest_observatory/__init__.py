"""pytest-observatory: long-running release checks for LLM gateways, as ordinary pytest tests.

The client-side names are imported on first access so that loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .marker import CheckSpec
from .result import CheckResult

if TYPE_CHECKING:
    from .client import AsyncDeployment, SyncDeployment
    from .errors import DeploymentError, DeploymentHTTPError
    from .observe import StreamResult

__all__ = [
    "AsyncDeployment",
    "CheckResult",
    "CheckSpec",
    "DeploymentError",
    "DeploymentHTTPError",
    "StreamResult",
    "SyncDeployment",
]
_LAZY = {
    "AsyncDeployment": "client",
    "SyncDeployment": "client",
    "StreamResult": "observe",
    "DeploymentError": "errors",
    "DeploymentHTTPError": "errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
