"""Typed errors a caller of an entity can catch."""

from __future__ import annotations


class ClusterError(Exception):
    """Base class of every error clusterkit raises."""


class UnknownEntity(ClusterError):
    """No entity type of that name is registered."""


class UnknownRpc(ClusterError):
    """The entity type has no rpc of that name."""


class InvalidPayload(ClusterError):
    """The arguments (or the reply) do not match the rpc's type hints."""


class PayloadTooLarge(InvalidPayload):
    """The encoded payload is larger than ``CLUSTERKIT["MAX_PAYLOAD_BYTES"]``."""


class MalformedMessage(ClusterError):
    """A message on the wire or in storage could not be decoded (bad envelope or headers)."""


class MailboxFull(ClusterError):
    """The entity already has ``mailbox_capacity`` requests waiting."""


class Timeout(ClusterError, TimeoutError):
    """No reply came within the call's timeout (a persisted call may still run later)."""


class RunnerUnavailable(ClusterError):
    """No live runner owns the entity's shard (volatile calls are not stored and fail)."""


class CallInTransaction(ClusterError):
    """A waiting call inside ``atomic()``: the message is invisible until commit."""


class RemoteError(ClusterError):
    """The handler raised: carries the remote exception's type and message."""

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.traceback = traceback


BY_NAME: dict[str, type[ClusterError]] = {
    cls.__name__: cls
    for cls in (
        UnknownEntity,
        UnknownRpc,
        InvalidPayload,
        PayloadTooLarge,
        MalformedMessage,
        MailboxFull,
        RunnerUnavailable,
    )
}


def error_from_reply(type_name: str, message: str, traceback: str = "") -> ClusterError:
    """The exception a caller raises for a failed reply (our own types come back typed)."""
    cls = BY_NAME.get(type_name)
    if cls is not None:
        return cls(message)
    return RemoteError(type_name, message, traceback)
