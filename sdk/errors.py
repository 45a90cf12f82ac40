"""The exceptions vrgv raises: each names the input, what is wrong with it and what to do.

Every class derives from :class:`VrgvError` (and from the builtin it refines, so ``except ValueError``
keeps working); the CLI prints ``str(error)`` without a traceback and exits non-zero.
"""
from __future__ import annotations


class VrgvError(Exception):
    """Base class of every error vrgv raises on purpose."""

    exit_code: int = 2


class RelationError(VrgvError, ValueError):
    """A relation string is malformed or uses words outside the model's vocabulary."""


class RegionsError(VrgvError, ValueError):
    """A ``Regions`` array or file has the wrong shape, dtype, range or content."""


class VideoError(VrgvError, ValueError):
    """A video path, frame folder or frame array cannot be decoded."""


class AnnotationError(VrgvError, ValueError):
    """An annotation or prediction file does not follow the documented format."""


class BundleError(VrgvError, ValueError):
    """A model bundle is missing files, fails its checksums or has an unsupported version."""


class BackendError(VrgvError, RuntimeError):
    """An inference backend is unavailable or cannot run on the requested device."""


class ConfigError(VrgvError, ValueError):
    """A model or training configuration is invalid."""


class LinkingError(VrgvError, ValueError):
    """Inputs to the linking step are inconsistent (shapes, NaN/inf, frame ids)."""


def describe(value: object, limit: int = 80) -> str:
    """Short printable form of an input for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
