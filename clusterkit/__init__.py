"""clusterkit: sharded entities, durable messages and runners for Django.

``from clusterkit import Entity, rpc`` is all an ``entities.py`` needs.
"""

from .entity import Entity
from .errors import (
    CallInTransaction,
    ClusterError,
    InvalidPayload,
    MailboxFull,
    MalformedMessage,
    PayloadTooLarge,
    RemoteError,
    RunnerUnavailable,
    Timeout,
    UnknownEntity,
    UnknownRpc,
)
from .retry import RetryPolicy
from .rpc import rpc

__all__ = [
    "CallInTransaction",
    "ClusterError",
    "Entity",
    "InvalidPayload",
    "MailboxFull",
    "MalformedMessage",
    "PayloadTooLarge",
    "RemoteError",
    "RetryPolicy",
    "RunnerUnavailable",
    "Timeout",
    "UnknownEntity",
    "UnknownRpc",
    "rpc",
]
