"""The one error family the library raises; ``cli.py`` turns it into a line and an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # findings, a failed build, a failed request
EXIT_USAGE = 2  # unusable input: bad flags, missing project, unreadable file


class FbundleError(Exception):
    """An error a user can act on: what is wrong (``message``) and what to do (``hint``)."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UsageError(FbundleError):
    """The input cannot be used at all (exit 2): missing project, malformed metadata, bad flag."""

    exit_code = EXIT_USAGE


class BuildError(FbundleError):
    """The build ran but could not produce a bundle (exit 1)."""


class ResolutionError(BuildError):
    """No set of wheels satisfies the requirements for the target (exit 2: unusable input)."""

    exit_code = EXIT_USAGE
