"""The typed codec of rpc arguments and replies (``RpcSpec`` via ``Entity.rpcs``)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit import Entity, InvalidPayload, PayloadTooLarge, rpc
from clusterkit.rpc import RpcSpec

INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=40)


class CodecProbe(Entity):
    """Rpcs covering scalars, containers, optionals and defaults."""

    entity_type = "tests.core.CodecProbe"

    @rpc
    async def scalars(self, n: int, s: str, flag: bool = False, ratio: float = 0.5) -> int:
        return n

    @rpc(persisted=True)
    async def containers(
        self,
        items: list[int],
        mapping: dict[str, str],
        tags: list[str] | None = None,
        note: str | None = None,
    ) -> dict[str, int]:
        return {}

    @rpc
    async def nested(self, rows: list[dict[str, int]], label: str = "x") -> list[str]:
        return []

    @rpc
    async def nothing(self) -> None:
        return None

    @rpc
    async def untyped(self, value):  # type: ignore[no-untyped-def]
        return value

    @rpc(name="renamed")
    async def original_name(self, x: int) -> int:
        return x


def spec(name: str) -> RpcSpec:
    return CodecProbe.rpcs[name]


def round_trip(name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    s = spec(name)
    return s.decode_args(s.encode_args(args, kwargs))


# -- registry ---------------------------------------------------------------------------


def test_rpcs_are_collected_with_their_options() -> None:
    assert set(CodecProbe.rpcs) == {
        "scalars", "containers", "nested", "nothing", "untyped", "renamed",
    }  # fmt: skip
    assert spec("containers").persisted
    assert not spec("scalars").persisted
    assert spec("scalars").is_async
    assert spec("renamed").param_names == ["x"]


def test_var_args_are_refused() -> None:
    with pytest.raises(TypeError):

        class _Bad(Entity):
            entity_type = "tests.core.CodecBad"

            @rpc
            async def spread(self, *values: int) -> int:
                return 0


# -- round trips --------------------------------------------------------------------------


@settings(max_examples=150)
@given(
    n=INT64,
    s=TEXT,
    flag=st.booleans(),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
)
def test_scalars_round_trip(n: int, s: str, flag: bool, ratio: float) -> None:
    assert round_trip("scalars", n=n, s=s, flag=flag, ratio=ratio) == {
        "n": n, "s": s, "flag": flag, "ratio": ratio,
    }  # fmt: skip
    assert round_trip("scalars", n, s, flag, ratio) == round_trip(
        "scalars", n=n, s=s, flag=flag, ratio=ratio
    )


@settings(max_examples=100)
@given(n=INT64, s=TEXT)
def test_defaults_are_filled_in(n: int, s: str) -> None:
    assert round_trip("scalars", n, s=s) == {"n": n, "s": s, "flag": False, "ratio": 0.5}


@settings(max_examples=150)
@given(
    items=st.lists(INT64, max_size=20),
    mapping=st.dictionaries(TEXT, TEXT, max_size=10),
    tags=st.none() | st.lists(TEXT, max_size=5),
    note=st.none() | TEXT,
    pass_optionals=st.booleans(),
)
def test_containers_and_optionals_round_trip(
    items: list[int],
    mapping: dict[str, str],
    tags: list[str] | None,
    note: str | None,
    pass_optionals: bool,
) -> None:
    if pass_optionals:
        decoded = round_trip("containers", items=items, mapping=mapping, tags=tags, note=note)
        assert decoded == {"items": items, "mapping": mapping, "tags": tags, "note": note}
    else:
        decoded = round_trip("containers", items, mapping)
        assert decoded == {"items": items, "mapping": mapping, "tags": None, "note": None}


@settings(max_examples=100)
@given(rows=st.lists(st.dictionaries(TEXT, INT64, max_size=5), max_size=5), label=TEXT)
def test_nested_round_trip(rows: list[dict[str, int]], label: str) -> None:
    assert round_trip("nested", rows=rows, label=label) == {"rows": rows, "label": label}


def test_no_arguments() -> None:
    assert spec("nothing").encode_args((), {}) == b"{}"
    assert round_trip("nothing") == {}


def test_payload_is_a_json_object_by_name() -> None:
    raw = spec("scalars").encode_args((3, "a"), {"flag": True})
    assert msgspec.json.decode(raw) == {"n": 3, "s": "a", "flag": True, "ratio": 0.5}


def test_an_int_is_accepted_for_a_float() -> None:
    assert round_trip("scalars", n=1, s="a", ratio=2) == {
        "n": 1, "s": "a", "flag": False, "ratio": 2.0,
    }  # fmt: skip


def test_untyped_parameter_takes_any_json() -> None:
    value = {"a": [1, "b", None, 2.5, True]}
    assert round_trip("untyped", value=value) == {"value": value}
    assert spec("untyped").decode_reply(b'{"x": [1]}') == {"x": [1]}


# -- refusals on the caller's side -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("scalars", {"n": "1", "s": "a"}),
        ("scalars", {"n": 1.5, "s": "a"}),
        ("scalars", {"n": True, "s": "a"}),
        ("scalars", {"n": 1, "s": 2}),
        ("scalars", {"n": 1, "s": "a", "flag": 1}),
        ("scalars", {"n": 1, "s": "a", "ratio": "0.5"}),
        ("scalars", {"n": None, "s": "a"}),
        ("containers", {"items": [1, "2"], "mapping": {}}),
        ("containers", {"items": (1, 2), "mapping": {"a": 1}}),
        ("containers", {"items": 5, "mapping": {}}),
        ("containers", {"items": [], "mapping": {1: "a"}}),
        ("containers", {"items": [], "mapping": {}, "tags": "abc"}),
        ("containers", {"items": [], "mapping": {}, "note": 3}),
        ("nested", {"rows": [{"a": "b"}]}),
        ("nested", {"rows": {"a": 1}}),
    ],
)
def test_wrong_types_are_invalid_payload(name: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload) as info:
        spec(name).encode_args((), kwargs)
    assert not isinstance(info.value, PayloadTooLarge)
    assert name in str(info.value)


@settings(max_examples=100)
@given(value=st.one_of(st.text(), st.floats(), st.none(), st.lists(st.integers(), max_size=3)))
def test_anything_but_an_int_is_refused_for_an_int(value: object) -> None:
    with pytest.raises(InvalidPayload):
        spec("scalars").encode_args((), {"n": value, "s": "a"})


def test_unknown_keyword_is_invalid_payload() -> None:
    with pytest.raises(InvalidPayload, match="scalars"):
        spec("scalars").encode_args((), {"n": 1, "s": "a", "extra": 1})


def test_self_is_not_an_argument() -> None:
    with pytest.raises(InvalidPayload):
        spec("scalars").encode_args((), {"self": 1, "n": 1, "s": "a"})


def test_too_many_positional_arguments_is_invalid_payload() -> None:
    with pytest.raises(InvalidPayload):
        spec("scalars").encode_args((1, "a", True, 0.5, "extra"), {})


def test_argument_given_twice_is_invalid_payload() -> None:
    with pytest.raises(InvalidPayload):
        spec("scalars").encode_args((1,), {"n": 1, "s": "a"})


@pytest.mark.parametrize(("args", "kwargs"), [((), {}), ((1,), {}), ((), {"s": "a"})])
def test_missing_required_is_invalid_payload(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidPayload):
        spec("scalars").encode_args(args, kwargs)


# -- refusals on the runner's side (decoding) -------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b"null",
        b'"n"',
        b'{"n": 1}',
        b'{"s": "a"}',
        b'{"n": "1", "s": "a"}',
        b'{"n": 1, "s": "a", "extra": 0}',
        b'{"n": 1, "s": "a", "flag": "yes"}',
        b'{"n": 1, "s": "a"',
        b'{"n": 1, "s": "\\ud800"',
        b"\xff\xfe",
    ],
)
def test_decoding_bad_arguments_is_invalid_payload(raw: bytes) -> None:
    with pytest.raises(InvalidPayload, match="scalars"):
        spec("scalars").decode_args(raw)


def test_decoding_accepts_str_and_bytes() -> None:
    expected = {"n": 1, "s": "a", "flag": False, "ratio": 0.5}
    assert spec("scalars").decode_args('{"n": 1, "s": "a"}') == expected
    assert spec("scalars").decode_args(b'{"s": "a", "n": 1}') == expected


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_decoding_garbage_only_raises_invalid_payload(raw: bytes) -> None:
    with contextlib.suppress(InvalidPayload):  # anything else fails the test
        spec("containers").decode_args(raw)


# -- replies ----------------------------------------------------------------------------------


def test_reply_round_trip() -> None:
    s = spec("containers")
    assert s.decode_reply(s.encode_reply({"a": 1, "b": 2})) == {"a": 1, "b": 2}
    assert spec("scalars").decode_reply(b"5") == 5
    assert spec("nested").decode_reply('["a", "b"]') == ["a", "b"]
    assert spec("nothing").decode_reply(b"null") is None


@settings(max_examples=100)
@given(st.dictionaries(TEXT, INT64, max_size=10))
def test_reply_round_trip_property(value: dict[str, int]) -> None:
    s = spec("containers")
    assert s.decode_reply(s.encode_reply(value)) == value


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("scalars", b'"5"'),
        ("scalars", b"5.5"),
        ("scalars", b"null"),
        ("scalars", b"true"),
        ("containers", b'{"a": "1"}'),
        ("containers", b"[]"),
        ("nested", b"[1]"),
        ("nothing", b"1"),
        ("scalars", b"garbage"),
        ("scalars", b""),
    ],
)
def test_reply_is_validated_against_the_return_annotation(name: str, raw: bytes) -> None:
    with pytest.raises(InvalidPayload, match="reply"):
        spec(name).decode_reply(raw)


def test_unencodable_reply_is_invalid_payload() -> None:
    with pytest.raises(InvalidPayload, match="JSON"):
        spec("untyped").encode_reply(object())
    with pytest.raises(InvalidPayload):
        spec("untyped").encode_reply({1j: "complex key"})


# -- size limit -------------------------------------------------------------------------------


def test_oversize_payload_is_payload_too_large() -> None:
    with override_settings(CLUSTERKIT={"MAX_PAYLOAD_BYTES": 100}):
        with pytest.raises(PayloadTooLarge, match="100"):
            spec("scalars").encode_args((), {"n": 1, "s": "x" * 200})
        with pytest.raises(InvalidPayload):  # PayloadTooLarge is an InvalidPayload
            spec("containers").encode_args((list(range(100)), {}), {})
    # the default limit is back once the override ends
    assert round_trip("scalars", n=1, s="x" * 200)["s"] == "x" * 200


def test_size_limit_boundary() -> None:
    base = spec("scalars").encode_args((), {"n": 1, "s": ""})
    pad = 100 - len(base)
    with override_settings(CLUSTERKIT={"MAX_PAYLOAD_BYTES": 100}):
        exact = spec("scalars").encode_args((), {"n": 1, "s": "x" * pad})
        assert len(exact) == 100
        with pytest.raises(PayloadTooLarge):
            spec("scalars").encode_args((), {"n": 1, "s": "x" * (pad + 1)})


def test_size_counts_encoded_bytes_not_characters() -> None:
    base = spec("scalars").encode_args((), {"n": 1, "s": ""})
    chars = (100 - len(base)) // 3 + 1  # "€" is three bytes in UTF-8
    with (
        override_settings(CLUSTERKIT={"MAX_PAYLOAD_BYTES": 100}),
        pytest.raises(PayloadTooLarge),
    ):
        spec("scalars").encode_args((), {"n": 1, "s": "€" * chars})
