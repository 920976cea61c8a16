"""Typed errors. A server error carries the server's status, code and message."""

from __future__ import annotations


class MossError(Exception):
    """Base of every error the SDK raises. `status` is None when no reply came back."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        # Seconds the server asked the client to wait (429, 503), when it said.
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status is not None else ""
        return f"{where}{self.code}: {self.message}"


class ValidationError(MossError):
    """400 / 422: the request was rejected as invalid and nothing was written."""


class AuthenticationError(MossError):
    """401: missing or wrong project id / key."""


class PermissionDeniedError(MossError):
    """403."""


class NotFoundError(MossError):
    """404: no such session (or one of another project, which reads the same)."""


class ConflictError(MossError):
    """409: e.g. opening a session with a different model than it was created with."""


class TooLargeError(MossError):
    """413: one request over a server limit (body size, text per call) that cannot be split."""


class RateLimitedError(MossError):
    """429: over the key's request rate (or too many failed authentications); nothing was
    written. `retry_after` says when to try again; the client already waited and retried
    as its RetryPolicy allows."""


class ServerError(MossError):
    """5xx."""


class MossConnectionError(MossError):
    """The server could not be reached, or did not answer in time."""


ERRORS_BY_STATUS: dict[int, type[MossError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_for_status(
    status: int, *, code: str, message: str, retry_after: float | None = None
) -> MossError:
    error_class = ERRORS_BY_STATUS.get(status) or (ServerError if status >= 500 else MossError)
    return error_class(message, status=status, code=code, retry_after=retry_after)


class WebhookVerificationError(MossError):
    """A webhook whose signature does not match, whose timestamp is stale (more than
    five minutes off), or whose headers or body are malformed. Answer it with 4xx."""
