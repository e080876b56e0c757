"""The ``@rpc`` decorator and the typed codec of each rpc's arguments and reply.

An rpc's arguments become a msgspec ``Struct`` built from the method's signature, so
a call is validated once on the caller's side and decoded with validation on the
runner's side; the reply is checked against the return annotation when it is decoded.
The wire format is JSON.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, overload

import msgspec

from .conf import cluster_settings
from .errors import InvalidPayload, PayloadTooLarge

_json_encode = msgspec.json.Encoder().encode


class RpcSpec:
    """Everything known about one rpc of an entity type."""

    def __init__(
        self, func: Callable[..., Any], *, persisted: bool, name: str | None,
        exclusive: bool = True, batch: str | None = None,
    ) -> None:
        self.func = func
        self.name = name or func.__name__
        self.persisted = persisted
        self.exclusive = exclusive
        self.batch = batch
        if persisted and not exclusive:
            raise TypeError(f"rpc {self.name}: only volatile rpcs can be non-exclusive")
        if batch is not None and not persisted:
            raise TypeError(f"rpc {self.name}: only persisted rpcs can be batched")
        self.is_async = inspect.iscoroutinefunction(func)
        self.signature = inspect.signature(func)
        params = list(self.signature.parameters.values())[1:]  # drop self
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"rpc {self.name}: *args/**kwargs are not supported")
        self.param_names = [p.name for p in params]
        self._hints: dict[str, Any] | None = None
        self._args_type: Any = None
        self._decoder: msgspec.json.Decoder[Any] | None = None
        self._reply_decoder: msgspec.json.Decoder[Any] | None = None

    def _resolve(self) -> None:
        hints = typing.get_type_hints(self.func)
        params = list(self.signature.parameters.values())[1:]
        fields: list[Any] = []
        for p in params:
            hint = hints.get(p.name, Any)
            if p.default is p.empty:
                fields.append((p.name, hint))
            else:
                fields.append((p.name, hint, p.default))
        self._args_type = msgspec.defstruct(
            f"{self.name}_args", fields, forbid_unknown_fields=True, kw_only=True
        )
        self._decoder = msgspec.json.Decoder(self._args_type)
        self._reply_decoder = msgspec.json.Decoder(hints.get("return", Any))
        self._hints = hints

    @property
    def args_type(self) -> Any:
        """The msgspec Struct of this rpc's arguments."""
        if self._hints is None:
            self._resolve()
        return self._args_type

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """Validate a call's arguments against the type hints and encode them as JSON."""
        try:
            bound = self.signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise InvalidPayload(f"{self.name}: {exc}") from None
        values = dict(bound.arguments)
        values.pop(next(iter(self.signature.parameters)))
        try:
            struct = msgspec.convert(values, self.args_type, strict=True)
        except msgspec.ValidationError as exc:
            raise InvalidPayload(f"{self.name}: {exc}") from None
        data = _json_encode(struct)
        check_size(data)
        return data

    def decode_args(self, raw: bytes | str) -> dict[str, Any]:
        """Decode and validate stored or received arguments into keyword arguments."""
        if self._hints is None:
            self._resolve()
        assert self._decoder is not None
        try:
            struct = self._decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise InvalidPayload(f"{self.name}: {exc}") from None
        return {name: getattr(struct, name) for name in struct.__struct_fields__}

    def encode_reply(self, value: Any) -> bytes:
        """The JSON of a handler's return value."""
        try:
            return _json_encode(value)
        except (TypeError, msgspec.EncodeError) as exc:
            raise InvalidPayload(f"{self.name}: reply is not JSON-encodable: {exc}") from None

    def decode_reply(self, raw: bytes | str) -> Any:
        """Decode a reply and check it against the return annotation."""
        if self._hints is None:
            self._resolve()
        assert self._reply_decoder is not None
        try:
            return self._reply_decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise InvalidPayload(f"{self.name}: reply does not match its type: {exc}") from None


def check_size(data: bytes) -> None:
    """Refuse a payload over ``CLUSTERKIT["MAX_PAYLOAD_BYTES"]``."""
    limit = cluster_settings.MAX_PAYLOAD_BYTES
    if len(data) > limit:
        raise PayloadTooLarge(f"payload is {len(data)} bytes, the limit is {limit}")


class RpcMethod:
    """What ``@rpc`` leaves on the class: the plain method, plus its :class:`RpcSpec`."""

    def __init__(self, spec: RpcSpec) -> None:
        self.spec = spec

    def __set_name__(self, owner: type, name: str) -> None:
        if self.spec.name != name and self.spec.name == self.spec.func.__name__:
            self.spec.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return self.spec.func.__get__(instance, owner)


@overload
def rpc(func: Callable[..., Any], /) -> RpcMethod: ...
@overload
def rpc(
    *, persisted: bool = False, name: str | None = None, exclusive: bool = True,
    batch: str | None = None,
) -> Callable[[Callable[..., Any]], RpcMethod]: ...


def rpc(
    func: Callable[..., Any] | None = None,
    /,
    *,
    persisted: bool = False,
    name: str | None = None,
    exclusive: bool = True,
    batch: str | None = None,
) -> RpcMethod | Callable[[Callable[..., Any]], RpcMethod]:
    """Mark an entity method as an rpc: ``@rpc`` (volatile) or ``@rpc(persisted=True)``.

    ``exclusive=False`` (volatile only) runs the handler at once, beside whatever the
    instance is handling, instead of queueing it in the mailbox: for control messages
    such as "cancel what you are doing".

    ``batch="method_name"`` (persisted only) names an async method of the entity that
    takes several calls at once: consecutive calls of this rpc waiting in the mailbox are
    handed to it together as a list of keyword dicts (in order, with the first call's
    request context), and it returns their results in the same order. If it raises,
    each call is handled on its own by the rpc, with its retries.
    """

    def wrap(f: Callable[..., Any]) -> RpcMethod:
        return RpcMethod(
            RpcSpec(f, persisted=persisted, name=name, exclusive=exclusive, batch=batch)
        )

    return wrap(func) if func is not None else wrap
