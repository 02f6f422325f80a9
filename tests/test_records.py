"""``@record`` behaves as ``@dataclass(frozen=True)``: the same classes built both ways give the same
equality, hash, repr, immutability, ``replace``/``fields``/``asdict`` and constructor errors."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import FrozenInstanceError, dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqprep import config, model
from seqprep.records import record


def _pair(**namespace):
    """The class of ``namespace`` made by ``dataclass(frozen=True)`` and by ``record``."""

    def make(deco):
        ns = {"__module__": __name__, "__qualname__": "Thing", **namespace}
        ns["__annotations__"] = dict(namespace.get("__annotations__", {}))
        return deco(type("Thing", (), ns))

    return make(dataclass(frozen=True)), make(record)


PLAIN = {
    "__annotations__": {"a": "int", "b": "str", "c": "tuple", "hidden": "int", "loose": "int"},
    "b": "x",
    "c": field(default_factory=tuple),
    "hidden": field(default=0, repr=False),
    "loose": field(default=0, compare=False),
}


@given(
    a=st.integers(),
    b=st.text(max_size=5),
    c=st.lists(st.integers(), max_size=3).map(tuple),
    a2=st.integers(),
    hidden=st.integers(),
    loose=st.integers(),
)
def test_equality_hash_and_repr_match_dataclass(a, b, c, a2, hidden, loose):
    dc, rec = _pair(**PLAIN)
    for x_kw, y_kw in [({"a": a}, {"a": a2}), ({"a": a, "b": b, "c": c}, {"a": a, "b": b, "c": c, "loose": loose})]:
        x1, y1 = dc(**x_kw, hidden=hidden), dc(**y_kw)
        x2, y2 = rec(**x_kw, hidden=hidden), rec(**y_kw)
        assert (x1 == y1) == (x2 == y2)
        assert (x1 != y1) == (x2 != y2)
        assert hash(x1) == hash(x2) and hash(y1) == hash(y2)
        assert repr(x1) == repr(x2) and repr(y1) == repr(y2)
        assert dataclasses.astuple(x1) == dataclasses.astuple(x2)
        assert dataclasses.asdict(y1) == dataclasses.asdict(y2)


def test_other_classes_are_never_equal():
    dc, rec = _pair(**PLAIN)
    assert rec(1) != dc(1) and dc(1) != rec(1)
    assert rec(1).__eq__(dc(1)) is NotImplemented
    assert rec(1) != (1, "x", (), 0, 0)


def test_fields_are_frozen():
    _, rec = _pair(**PLAIN)
    x = rec(1)
    for name in ("a", "hidden", "new_attribute"):
        with pytest.raises(FrozenInstanceError, match=f"cannot assign to field '{name}'"):
            setattr(x, name, 2)
        with pytest.raises(FrozenInstanceError):
            delattr(x, name)
    assert x.a == 1
    y = dataclasses.replace(x, a=3)
    assert (y.a, y.b, x.a) == (3, "x", 1)
    assert [f.name for f in dataclasses.fields(rec)] == ["a", "b", "c", "hidden", "loose"]


def test_subclass_may_add_attributes_but_not_change_fields():
    _, rec = _pair(**PLAIN)

    class Sub(rec):
        pass

    s = Sub(1)
    s.extra = 5
    assert s.extra == 5
    with pytest.raises(FrozenInstanceError):
        s.a = 2
    assert s != rec(1)  # another class


def test_constructor_takes_what_dataclass_takes():
    dc, rec = _pair(**PLAIN)
    assert str(inspect.signature(rec)) == str(inspect.signature(dc))
    calls = [
        ((1,), {}),
        ((1, "y"), {}),
        ((1,), {"c": (2,), "loose": 3}),
        ((), {"a": 1, "hidden": 4}),
        ((1, "b", (3,), 4, 5), {}),
    ]
    for args, kwargs in calls:
        assert repr(rec(*args, **kwargs)) == repr(dc(*args, **kwargs))
        assert dataclasses.asdict(rec(*args, **kwargs)) == dataclasses.asdict(dc(*args, **kwargs))
    assert rec(1).c is not rec(1).c or rec(1).c == ()  # a factory runs per instance
    lists = _pair(__annotations__={"v": "list"}, v=field(default_factory=list))[1]
    assert lists().v is not lists().v
    wrong = [((), {}), ((1,), {"z": 2}), ((1, "b", (), 0, 0, 9), {}), ((1,), {"a": 1})]
    for args, kwargs in wrong:
        for cls in (dc, rec):
            with pytest.raises(TypeError):
                cls(*args, **kwargs)


def test_fields_without_init_are_set_as_dataclass_sets_them():
    ns = {
        "__annotations__": {"a": "int", "n": "int", "xs": "list"},
        "n": field(default=5, init=False),
        "xs": field(default_factory=list, init=False),
    }
    dc, rec = _pair(**ns)
    assert repr(rec(1)) == repr(dc(1)) and rec(1) == rec(1)
    assert vars(rec(1)) == vars(dc(1))  # the plain default stays the class's, the factory's value is set
    with pytest.raises(TypeError):
        rec(1, 2)


def test_post_init_and_explicit_methods_are_kept():
    def post(self):
        object.__setattr__(self, "b", self.b.upper())

    def own_hash(self):
        return 7

    dc, rec = _pair(__annotations__={"b": "str"}, __post_init__=post, __hash__=own_hash)
    assert rec("q").b == dc("q").b == "Q"
    assert hash(rec("q")) == hash(dc("q")) == 7


def test_array_fields_compare_as_dataclass_fields_do():
    dc, rec = _pair(__annotations__={"v": "np.ndarray"})
    a = np.arange(3)
    for cls in (dc, rec):
        assert cls(a) == cls(a)  # the same array: identity, as tuples compare
        with pytest.raises(ValueError, match="truth value"):
            cls(a) == cls(a.copy())  # noqa: B015


@pytest.mark.parametrize("module", [config, model])
def test_the_option_and_data_classes_are_records(module):
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__]
    records = [c for c in classes if dataclasses.is_dataclass(c)]
    assert records
    for cls in records:
        assert cls.__setattr__.__qualname__ == f"{cls.__qualname__}.__setattr__", cls


def test_a_config_is_equal_hashable_and_frozen():
    a = config.make_config(["sample_data/ratings.csv"], "/tmp/out")
    b = config.make_config(["sample_data/ratings.csv"], "/tmp/out")
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert a != dataclasses.replace(a, output="/tmp/other")
    with pytest.raises(FrozenInstanceError):
        a.output = "/tmp/other"
    assert pickle.loads(pickle.dumps(a)) == a == copy.deepcopy(a)  # (the Dask engine ships it to workers)
