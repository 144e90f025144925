"""Errors the CLI turns into one clear line and a non-zero exit code."""

__all__ = ["PipelineError", "ConfigError", "InputError", "OutputError"]


class PipelineError(Exception):
    """Base class: a problem the user can fix (bad config, missing or bad input)."""

    exit_code = 1


class ConfigError(PipelineError):
    """The config file is unreadable, or a key is unknown or has a wrong value."""

    exit_code = 2


class InputError(PipelineError):
    """An input file (scene, AOI, events, training data) is missing or unusable."""

    exit_code = 2


class OutputError(PipelineError):
    """An output file cannot be written: the disk is full, or the output folder is not writable."""

    exit_code = 2
