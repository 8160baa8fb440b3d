"""User-facing errors.

A `CamreproError` carries a message that names the file or value at fault and what to do about
it. The CLI prints it without a traceback and exits with status 2; anything else is a bug and
keeps its traceback.
"""


class CamreproError(Exception):
    """An error caused by input or environment, with a message meant for the user."""


class DataError(CamreproError):
    """A dataset file is missing, corrupt or inconsistent."""


class DownloadError(CamreproError):
    """A download failed, was interrupted, or did not match its checksum."""


class UnreachableError(DownloadError):
    """The server cannot be reached at all (connection refused, no such host): retrying at once
    does not help, unlike a timeout or a connection cut mid-transfer."""


class UnsafeArchiveError(CamreproError):
    """An archive member would be written outside the extraction folder."""
