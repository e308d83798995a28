"""Exceptions raised by the dataset loaders and exporters.

Every message is one line naming the offending file and what was expected, so the CLI can print
it as is. The classes subclass the builtin exceptions callers already catch (``ValueError``,
``FileNotFoundError``).
"""

from __future__ import annotations


class DatasetError(ValueError):
    """Base class: a dataset on disk is not what the loader expects."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A root directory, split directory or required file is missing."""


class DatasetFormatError(DatasetError):
    """A file exists but its content is wrong: corrupt image, bad JSON, unknown class id."""


class SkippedFileWarning(UserWarning):
    """A file of a dataset could not be read and was left out (one line: the file, the reason)."""
