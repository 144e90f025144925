"""Errors the CLI turns into one clear line and a non-zero exit code."""

import errno

__all__ = ["PipelineError", "ConfigError", "InputError", "OutputError", "as_pipeline_error", "detached"]


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


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def as_pipeline_error(err: BaseException) -> PipelineError | None:
    """The kind of an error that reached the runner from anywhere (a Dask worker included), as the error
    the CLI reports with exit 2, or None where it is not the user's to fix (a bug: exit 1).

    A PipelineError stays as it is. An OSError of a full disk or quota (also one wrapped by a library,
    as its cause or context) becomes an OutputError naming the file; a file that is not found (deleted
    or moved during the run) an InputError naming it."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, PipelineError):
            return err
        if isinstance(err, OSError):
            where = f" {err.filename}" if getattr(err, "filename", None) else ""
            if err.errno in _DISK_FULL:
                return OutputError(f"disk full while writing{where} ({err.strerror or 'No space left on device'}); "
                                   "free some space (or raise the quota) and run again: finished files are kept")
            if isinstance(err, FileNotFoundError) and where:
                return InputError(f"{err.filename}: the file is gone: it was deleted or moved while the run used "
                                  "it; put it back and run again")
        err = err.__cause__ or err.__context__
    return None


def detached(err: PipelineError) -> PipelineError:
    """`err` without the chain of errors it was raised from (`__cause__`, `__context__`), to re-raise on a
    Dask worker: the chain is pickled with the error, and one that cannot be unpickled (rasterio's GDAL
    errors cannot) makes the error reach the runner as a bare Exception, and the run exit 1 instead of 2.
    Its message already says what went wrong."""
    err.__cause__ = err.__context__ = None
    return err
