"""Streaming Sigma detection: rules loaded with pySigma, compiled, indexed and matched per event."""

from __future__ import annotations

from sigma.modifiers import SigmaWideModifier, modifier_mapping

# The specification names utf16le beside its alias wide; pySigma 1.5 knows only wide.
modifier_mapping.setdefault("utf16le", SigmaWideModifier)
