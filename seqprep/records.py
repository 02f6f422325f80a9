"""``@record``: ``@dataclass(frozen=True)`` with the same behaviour, cheaper to define.

Python 3.11's ``dataclass`` writes six methods of a frozen class (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) as source text and compiles each: about
0.8 ms a class, 20-30 ms of every ``seqprep`` process for the option and data classes it imports.
``record`` lets ``dataclass`` collect the fields (``fields``, ``replace``, ``asdict`` work as ever)
and gives the six methods as closures over the class's fields, which cost no compilation and
behave as the generated ones do:

- ``__init__``: the parameters of the generated one (``__signature__``: the fields with ``init``,
  in order, keyword-only ones last; their defaults), each field set once, a ``default_factory``
  called for each instance, then ``__post_init__()`` if the class has one. A wrong call raises
  ``TypeError`` as well (its message is :meth:`inspect.Signature.bind`'s, after the class name);
- ``__eq__``: equal when ``other`` is of the very same class and the tuples of their compared
  fields are equal; ``NotImplemented`` otherwise;
- ``__hash__``: the hash of the tuple of the hashed fields (``compare`` ones unless ``hash=`` says
  otherwise); a ``__hash__`` the class defines itself is kept, as dataclass keeps it;
- ``__repr__``: ``Name(field=value!r, ...)`` of the ``repr`` fields (recursion-safe);
- ``__setattr__`` / ``__delattr__``: :class:`dataclasses.FrozenInstanceError` for any field, and for
  any attribute of an instance of the class itself (a subclass may add its own).

A method the class defines itself is kept. tests/test_records.py compares every method with
``dataclass(frozen=True)``'s.
"""

from __future__ import annotations

import dataclasses
import inspect
import reprlib
from typing import Any, TypeVar

try:
    from typing import dataclass_transform
except ImportError:  # Python 3.10: the marker is for type checkers only

    def dataclass_transform(**kwargs: Any) -> Any:
        return lambda f: f


__all__ = ["record"]

T = TypeVar("T", bound=type)


@dataclass_transform(frozen_default=True)
def record(cls: T) -> T:
    """``cls`` as ``@dataclass(frozen=True)`` makes it (see the module's docstring)."""
    body = dict(cls.__dict__)
    if any("InitVar" in str(a) for a in body.get("__annotations__", {}).values()):
        msg = f"{cls.__name__}: record does not take InitVar fields; use dataclass(frozen=True)"
        raise TypeError(msg)
    for name in ("__setattr__", "__delattr__"):
        if name in body:
            msg = f"cannot overwrite attribute {name} in class {cls.__name__}"
            raise TypeError(msg)
    cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False)
    fields = dataclasses.fields(cls)
    names = frozenset(f.name for f in fields)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    shown = tuple(f.name for f in fields if f.repr)
    init_fields = [f for f in fields if f.init]
    signature = _signature(init_fields)
    # (name, default or MISSING, factory or MISSING) of every field __init__ sets, in field order: as
    # dataclass's, the init fields and the others with a factory (a plain default stays the class's)
    setters = [
        (f.name, f.default, f.default_factory) for f in fields if f.init or f.default_factory is not dataclasses.MISSING
    ]
    post_init = getattr(cls, "__post_init__", None) is not None
    missing = dataclasses.MISSING

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            given = signature.bind(*args, **kwargs).arguments
        except TypeError as e:
            msg = f"{cls.__qualname__}.__init__(): {e}"
            raise TypeError(msg) from None
        for name, default, factory in setters:
            value = given.get(name, missing)
            if value is missing:
                value = default if default is not missing else factory()
            object.__setattr__(self, name, value)
        if post_init:
            self.__post_init__()

    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *signature.parameters.values()]
    )

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return tuple([getattr(self, n) for n in compared]) == tuple([getattr(other, n) for n in compared])
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(tuple([getattr(self, n) for n in hashed]))

    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        return self.__class__.__qualname__ + "(" + ", ".join([f"{n}={getattr(self, n)!r}" for n in shown]) + ")"

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            msg = f"cannot assign to field {name!r}"
            raise dataclasses.FrozenInstanceError(msg)
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            msg = f"cannot delete field {name!r}"
            raise dataclasses.FrozenInstanceError(msg)
        super(cls, self).__delattr__(name)

    explicit_hash = "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body)
    methods = {
        "__init__": __init__,
        "__eq__": __eq__,
        "__repr__": __repr__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
    }
    if not explicit_hash:
        methods["__hash__"] = __hash__
    for name, fn in methods.items():
        if name in body and name != "__hash__":  # one the class defines itself stays, as with dataclass
            continue
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)
    return cls


def _signature(fields: list[dataclasses.Field[Any]]) -> inspect.Signature:
    """The parameters of dataclass's ``__init__`` for ``fields`` (without ``self``): positional-or-keyword
    ones in field order, then the keyword-only ones; a default or factory makes one optional."""
    P = inspect.Parameter
    params: list[list[inspect.Parameter]] = [[], []]
    for f in fields:
        optional = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else _FACTORY if optional else P.empty
        kw_only = getattr(f, "kw_only", False) is True
        kind = P.KEYWORD_ONLY if kw_only else P.POSITIONAL_OR_KEYWORD
        params[kw_only].append(P(f.name, kind, default=default, annotation=f.type))
    try:
        return inspect.Signature(params[0] + params[1], return_annotation=None)
    except ValueError as e:  # a field without a default after one with: dataclass's TypeError
        raise TypeError(str(e)) from None


class _Factory:
    """The default shown in the signature of a field with a ``default_factory``."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
