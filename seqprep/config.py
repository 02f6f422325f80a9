"""Every option of a build, as frozen dataclasses.

The CLI and the Python API both end up here: flags or keyword arguments -> :func:`make_config` ->
:class:`BuildConfig` -> ``validate()`` -> the pipeline. ``to_dict()`` is what meta.json records under
``options`` (enough to repeat the build) and ``from_dict()`` reads it back.

Options are grouped (``read`` for how inputs are parsed, the rest for what is built); a flat keyword
such as ``sep=";"`` is routed to the group that owns it, so ``seqprep.build(..., sep=";")`` works.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from .errors import ConfigError

__all__ = [
    "ReadOptions",
    "ResourceOptions",
    "BuildConfig",
    "parse_size",
    "make_config",
    "ItemOrder",
    "UserOrder",
    "OutputFormat",
    "IdType",
    "InputFormat",
]

ItemOrder = Literal["frequency", "first-seen", "id"]
UserOrder = Literal["id", "first-seen"]
OutputFormat = Literal["parquet", "npz"]
IdType = Literal["auto", "int", "str"]
InputFormat = Literal["auto", "csv", "jsonl", "parquet"]

ROLES = ("user", "item", "time", "rating")


def _check_choice(name: str, value: Any, kind: Any) -> None:
    allowed = get_args(kind)
    if value not in allowed:
        msg = f"{name} must be one of {', '.join(allowed)}, not {value!r}"
        raise ConfigError(msg)


@dataclass(frozen=True)
class ReadOptions:
    """How input logs are parsed. ``None`` means "detect it"."""

    sep: str | None = None
    header: bool | None = None
    names: tuple[str, ...] | None = None
    user_col: str | None = None
    item_col: str | None = None
    time_col: str | None = None
    rating_col: str | None = None
    id_type: IdType = "auto"
    input_format: InputFormat = "auto"

    def validate(self) -> None:
        _check_choice("id_type", self.id_type, IdType)
        _check_choice("input_format", self.input_format, InputFormat)
        if self.sep is not None and (self.sep == "" or "\n" in self.sep or "\r" in self.sep):
            msg = f"--sep {self.sep!r} is not a usable separator; pass one or more characters such as ',' or '::'"
            raise ConfigError(msg)
        if self.names is not None:
            if len(set(self.names)) != len(self.names) or any(not n for n in self.names):
                msg = f"--names {','.join(self.names)!r} has empty or repeated names; give one distinct name per column"
                raise ConfigError(msg)

    def role_column(self, role: str) -> str | None:
        return getattr(self, f"{role}_col")


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: str | int, name: str = "size") -> int:
    """A byte count from ``4GB`` (10^9), ``512MiB`` (2^20), ``1.5GiB`` or a plain number of bytes.

    >>> parse_size("4GB"), parse_size("512MiB"), parse_size(1024)
    (4000000000, 536870912, 1024)
    """
    import re

    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        n = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _SIZE_UNITS:
            msg = f"{name} {value!r} is not a size; write it like 4GB, 512MiB or 1073741824 (bytes)"
            raise ConfigError(msg)
        n = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if n <= 0:
        msg = f"{name} {value!r} must be more than 0 bytes; write it like 4GB or 512MiB"
        raise ConfigError(msg)
    return n


@dataclass(frozen=True)
class ResourceOptions:
    """How much of the machine a build may use. These never change the result, so meta.json omits them.

    ``threads``: cap on pyarrow's (and BLAS/OpenMP) threads, ``None`` = all cores. ``memory_limit``:
    above it the integer columns are spilled to a temporary folder and sorted user-range by
    user-range (``None`` = no limit). ``block_size``: bytes of input parsed per block while streaming.
    """

    threads: int | None = None
    memory_limit: str | int | None = None
    block_size: str | int = "16MiB"

    def validate(self) -> None:
        t = self.threads
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
            msg = f"--threads must be a whole number of at least 1, not {self.threads!r}; pass e.g. --threads 2"
            raise ConfigError(msg)
        self.memory_limit_bytes  # noqa: B018 - validates
        if self.block_size_bytes < 1024:
            msg = f"--block-size {self.block_size!r} is below 1KiB; pass e.g. --block-size 16MiB"
            raise ConfigError(msg)

    @property
    def memory_limit_bytes(self) -> int | None:
        return None if self.memory_limit is None else parse_size(self.memory_limit, "--memory-limit")

    @property
    def block_size_bytes(self) -> int:
        return parse_size(self.block_size, "--block-size")


@dataclass(frozen=True)
class BuildConfig:
    """One build: inputs, output and every choice that shapes the result."""

    inputs: tuple[str, ...]
    output: str
    formats: tuple[OutputFormat, ...] = ("parquet",)
    item_order: ItemOrder = "frequency"
    user_order: UserOrder = "id"
    overwrite: bool = False
    strict: bool = False
    read: ReadOptions = field(default_factory=ReadOptions)
    resources: ResourceOptions = field(default_factory=ResourceOptions)

    def validate(self) -> BuildConfig:
        if not self.inputs:
            msg = "no input given; pass one or more log files (or - for stdin)"
            raise ConfigError(msg)
        if not self.output:
            msg = "no output folder given; pass -o OUT"
            raise ConfigError(msg)
        if not self.formats:
            msg = "no output format given; pass -f parquet and/or -f npz"
            raise ConfigError(msg)
        for f in self.formats:
            _check_choice("format", f, OutputFormat)
        _check_choice("item_order", self.item_order, ItemOrder)
        _check_choice("user_order", self.user_order, UserOrder)
        self.read.validate()
        self.resources.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``BuildConfig.from_dict(c.to_dict()) == c``."""
        d = dataclasses.asdict(self)
        return _jsonable(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildConfig:
        d = dict(d)
        read = ReadOptions(**_tuples(d.pop("read", {}), ReadOptions))
        resources = ResourceOptions(**d.pop("resources", {}))
        return cls(read=read, resources=resources, **_tuples(d, cls))

    def replace(self, **changes: Any) -> BuildConfig:
        return make_config(base=self, **changes)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _tuples(d: dict[str, Any], cls: type) -> dict[str, Any]:
    """Lists (from JSON) back to tuples for the tuple-typed fields of ``cls``."""
    out = dict(d)
    for f in fields(cls):
        if f.name in out and isinstance(out[f.name], list):
            out[f.name] = tuple(out[f.name])
    return out


_GROUPS: dict[str, type] = {"read": ReadOptions, "resources": ResourceOptions}


def make_config(
    inputs: Any = None,
    output: Any = None,
    *,
    base: BuildConfig | None = None,
    **options: Any,
) -> BuildConfig:
    """Build a validated :class:`BuildConfig` from flat keyword options.

    >>> c = make_config(["ratings.csv"], "out", sep=";", item_order="id")
    >>> c.read.sep, c.item_order
    (';', 'id')
    """
    top = {f.name for f in fields(BuildConfig)} - set(_GROUPS)
    group_fields = {g: {f.name for f in fields(cls)} for g, cls in _GROUPS.items()}
    top_kw: dict[str, Any] = {}
    group_kw: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
    for key, value in options.items():
        if key in top:
            top_kw[key] = value
        elif key in _GROUPS and isinstance(value, _GROUPS[key]):
            group_kw[key] = dataclasses.asdict(value) | group_kw[key]
        else:
            owner = next((g for g, names in group_fields.items() if key in names), None)
            if owner is None:
                valid = sorted(top | set().union(*group_fields.values()))
                msg = f"unknown option {key!r}; valid options are {', '.join(valid)}"
                raise ConfigError(msg)
            group_kw[owner][key] = value
    if inputs is not None:
        top_kw["inputs"] = (inputs,) if isinstance(inputs, str) else tuple(str(i) for i in inputs)
    if output is not None:
        top_kw["output"] = str(output)
    for key in ("formats",):
        if key in top_kw and isinstance(top_kw[key], str):
            top_kw[key] = (top_kw[key],)
        if key in top_kw:
            top_kw[key] = tuple(top_kw[key])
    if "names" in group_kw["read"] and isinstance(group_kw["read"]["names"], str):
        group_kw["read"]["names"] = tuple(n.strip() for n in group_kw["read"]["names"].split(","))
    elif group_kw["read"].get("names") is not None:
        group_kw["read"]["names"] = tuple(group_kw["read"]["names"])

    if base is None:
        if "inputs" not in top_kw or "output" not in top_kw:
            msg = "a build needs inputs and an output folder"
            raise ConfigError(msg)
        groups = {g: cls(**group_kw[g]) for g, cls in _GROUPS.items()}
        cfg = BuildConfig(**top_kw, **groups)
    else:
        groups = {g: dataclasses.replace(getattr(base, g), **group_kw[g]) for g in _GROUPS}
        cfg = dataclasses.replace(base, **top_kw, **groups)
    return cfg.validate()
