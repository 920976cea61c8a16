"""Domain errors. The API, the console and commands each turn them into their own replies."""


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422


class TooLarge(DomainError):
    """Over a cost limit of one call; the same work split into smaller calls is accepted."""

    code = "too_large"
    status = 413


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class PermissionDenied(DomainError):
    code = "forbidden"
    status = 403
