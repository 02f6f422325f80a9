"""Typing a log's columns: ids as dictionary codes (text typed on the distinct values only, so ``007``
and ``7`` stay two ids), timestamps (epoch numbers or ISO-8601 dates, with their unit) and ratings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, one_line
from ..timeunits import UNIT_SCALE
from .quoting import RowLines

__all__ = [
    "DICT",
    "canonical_ints",
    "ids_to_dict",
    "first_bad",
    "casts",
    "first_uncastable",
    "normalize_time",
    "normalize_rating",
    "merge_ids",
    "check_nul_ids",
    "merge_times",
]


DICT = pa.dictionary(pa.int32(), pa.string())

_INT_RE = r"^(0|-?[1-9][0-9]*)$"

#: 10**k for k = 1..18, as int64: an int64's decimal digits are 1 + how many of these it reaches.
_POW10 = [10**k for k in range(1, 19)]


def canonical_ints(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The values of a string id column whose every id is **canonical decimal**, as int64 -> (values
    with 0 where missing, validity or None when none is missing); None when any id is not.

    Canonical decimal: the text is exactly ``str(v)`` of an int64 ``v`` - the digits ``0-9`` with
    no leading zero (``0`` itself is one), a ``-`` in front of a non-zero value only, nothing else
    (no ``+``, space, tab, hex prefix, exponent or other digit set); ``_INT_RE`` within int64. Such
    an id and its integer map one to one, so ids parsed as these integers give the same vocabulary,
    in the same first-seen order, as the same ids parsed as text (``007`` or `` 7`` is not canonical:
    its block takes the text path, where ``007`` and ``7`` stay two ids).

    The proof looks at the column's bytes and integers in a few vectorised passes, not at each id
    in Python: every byte is a digit or ``-`` and pyarrow's integer cast accepts every id, so each
    is ``-?[0-9]+``; then the bytes of the ids add up to exactly the canonical texts' lengths (an
    id ``-?[0-9]+`` is never shorter than its value's canonical text, so none is longer: no leading
    zero, no ``-0``). A missing id (null) holds no byte and stays missing.

    >>> canonical_ints(pa.array(["7", None, "-12", "0"]))[0].tolist()
    [7, 0, -12, 0]
    >>> [canonical_ints(pa.array([s])) for s in ("007", "+5", " 5", "-0", "0x1f", "9223372036854775808")]
    [None, None, None, None, None, None]
    """
    if not pa.types.is_string(arr.type):
        return None
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return None  # nothing to prove: the text path is as cheap
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, n + 1, arr.offset * 4)
    lo, hi = int(offsets[0]), int(offsets[-1])
    if data_buf is None or hi == lo:
        return None  # only empty ids: not integers
    data = np.frombuffer(data_buf, np.uint8, hi - lo, lo)
    low, high = int(data.min()), int(data.max())
    if high > 57 or (low < 48 and (low != 45 or np.count_nonzero((data < 48) & (data != 45)))):
        return None  # a byte that is neither a digit nor '-'
    try:
        ints = pc.cast(arr, pa.int64())
    except pa.ArrowInvalid:  # a misplaced '-', or beyond int64
        return None
    valid = None
    if ints.null_count:
        valid = ints.is_valid().to_numpy(zero_copy_only=False)
        values = pc.fill_null(ints, 0).to_numpy(zero_copy_only=False)
    else:
        values = ints.to_numpy(zero_copy_only=False)
    # the canonical texts' bytes - a digit each, one more per power of ten reached, the '-' of the
    # negative ones (a missing id, here 0, counts one digit and holds no byte) - against the ids' own
    size = n - ints.null_count
    if low >= 48:  # no '-': no negative value (one pass a power of ten, cheaper than each id's first byte)
        magnitude = values
    else:
        negative = values < 0
        size += int(np.count_nonzero(negative))
        magnitude = np.where(negative, np.uint64(0) - values.view(np.uint64), values.view(np.uint64))  # (int64's minimum too)
    top = int(magnitude.max())
    for p in _POW10:
        if p > top:
            break
        size += int(np.count_nonzero(magnitude >= magnitude.dtype.type(p)))
    return (values, valid) if size == hi - lo else None


def ids_to_dict(col: pa.ChunkedArray, role: str, where: str, flag: str | None = None) -> pa.DictionaryArray:
    """Any id column -> one DictionaryArray (int32 indices, first-seen dictionary of string/int64).

    ``flag`` names the option that chose the column in messages (default ``--<role>-col``)."""
    if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1:
        col = col.chunk(0)
    t = col.type
    if pa.types.is_dictionary(t):
        if not pa.types.is_string(t.value_type) and not pa.types.is_integer(t.value_type):
            col = pc.cast(col, DICT)
    elif pa.types.is_integer(t):
        col = pc.cast(col, pa.int64())
    elif pa.types.is_floating(t):
        arr = col.combine_chunks()
        ok = pc.equal(arr, pc.floor(arr))
        if not pc.all(ok).as_py():
            bad = arr.filter(pc.invert(ok))[0].as_py()
            msg = f"{where}: {role} ids are fractional numbers (e.g. {bad}); ids must be integers or text - pass {flag or f'--{role}-col'} with an id column"
            raise InputError(msg)
        col = pc.cast(arr, pa.int64())
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        pass
    else:
        col = pc.cast(col, pa.string())
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 0:
            return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], col.type.value_type))
        col = pa.table({"c": col}).unify_dictionaries()["c"]
        indices = pa.concat_arrays([c.indices for c in col.chunks])
        return pa.DictionaryArray.from_arrays(pc.cast(indices, pa.int32()), col.chunk(0).dictionary)
    # (pyarrow's own codes: no pass over the rows to check them)
    return pa.DictionaryArray.from_arrays(pc.cast(col.indices, pa.int32()), col.dictionary, safe=False)


def first_bad(values: pa.Array, ok: pa.Array) -> tuple[int, Any]:
    bad_mask = pc.and_(pc.invert(pc.fill_null(ok, True)), pc.is_valid(values))
    idx = int(np.flatnonzero(bad_mask.to_numpy(zero_copy_only=False))[0])
    return idx, values[idx].as_py()


def casts(arr: pa.Array, target: pa.DataType) -> bool:
    try:
        pc.cast(arr, target)
    except pa.ArrowInvalid:
        return False
    return True


def first_uncastable(arr: pa.Array, targets: tuple[pa.DataType, ...]) -> int:
    """Index of the first value no target type accepts, by bisection (log2(n) vectorised casts).

    >>> first_uncastable(pa.array(["2020-01-01", "2020-02-30", "2021-01-01"]), (pa.timestamp("ns"),))
    1
    """
    lo, hi = 0, len(arr)  # the first bad index lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if any(casts(arr.slice(lo, mid - lo), t) for t in targets):
            lo = mid
        else:
            hi = mid
    return lo


def normalize_time(col: pa.ChunkedArray, where: str, lines: int | RowLines) -> tuple[pa.Array, str]:
    """-> (int64 or float64 array with nulls, unit). Epoch numbers keep their unit ('epoch'); ISO
    dates become the coarsest exact unit of s/ms/us/ns.

    ``lines`` names the line of a row in a message: a :class:`RowLines`, or the number of header rows.
    """
    line = lines if isinstance(lines, RowLines) else RowLines(lines)
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_null(t):  # no value at all (e.g. a header-only file)
        return pa.nulls(len(arr), pa.int64()), "epoch"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        arr = _typed_text_times(pc.utf8_trim_whitespace(arr), where, line)
        t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return _coarsest_unit(arr)
    if pa.types.is_integer(t):
        return pc.cast(arr, pa.int64()), "epoch"
    if pa.types.is_floating(t):
        return _float_times(arr, where, line), "epoch"
    msg = f"{where}: timestamp column has type {t}, not a number or date; pass --time-col with the right column"
    raise InputError(msg)


_DATE_TYPES = (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC"))
_NUMBER_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_ISO_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"


def _typed_text_times(arr: pa.Array, where: str, line: RowLines) -> pa.Array:
    """Text timestamps as numbers (int64, else float64) or dates; else the error naming the first bad row."""
    for target in (pa.int64(), pa.float64(), *_DATE_TYPES):
        try:
            return pc.cast(arr, target)
        except pa.ArrowInvalid:
            continue
    is_num = pc.match_substring_regex(arr, _NUMBER_RE)
    ok = pc.or_(is_num, pc.match_substring_regex(arr, _ISO_RE))
    if pc.all(pc.fill_null(ok, True)).as_py():
        raise _well_formed_yet_bad(arr, is_num, where, line)
    idx, val = first_bad(arr, ok)
    fix = "fix the row or pass --time-col with the right column"
    if idx == 0 and not line.header:
        fix = "the first line looks like a header: drop --no-header (or fix the row)"
    msg = f"{where}: line {line(idx)}: timestamp {val!r} is neither a number nor an ISO-8601 date; {fix}"
    raise InputError(msg)


def _well_formed_yet_bad(arr: pa.Array, is_num: pa.Array, where: str, line: RowLines) -> InputError:
    """Every value looks like a number or a date, yet the column does not type: numbers and dates are
    mixed, time zones are mixed, or a date does not exist (2020-13-45)."""
    if pc.any(is_num).as_py() and not pc.all(pc.fill_null(is_num, True)).as_py():
        # each value is fine alone, but numbers and dates are mixed: name the first change of kind
        kinds = pc.fill_null(is_num, False).to_numpy(zero_copy_only=False)
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        first = int(np.flatnonzero(valid)[0])
        idx = int(np.flatnonzero(valid & (kinds != kinds[first]))[0])
        kind = "numbers" if kinds[first] else "dates"
        msg = (
            f"{where}: the timestamps mix numbers and ISO-8601 dates; use one kind in the whole column "
            f"(line {line(idx)} holds {arr[idx].as_py()!r} after {kind})"
        )
        return InputError(msg)
    idx = first_uncastable(arr, _DATE_TYPES)
    value = arr[idx].as_py()
    if any(casts(arr.slice(idx, 1), t) for t in _DATE_TYPES):  # fine alone: mixed with/without zone
        msg = (
            f"{where}: line {line(idx)}: timestamp {value!r} has a time zone (Z, +hh:mm) where "
            "earlier ones have none, or the other way round; write every timestamp in one form"
        )
        return InputError(msg)
    return InputError(f"{where}: line {line(idx)}: timestamp {value!r} is not a valid date; fix the row")


def _coarsest_unit(arr: pa.Array) -> tuple[pa.Array, str]:
    """Dates as int64 in the coarsest exact unit of s/ms/us/ns (ISO dates become epoch seconds)."""
    if pa.types.is_date(arr.type):
        arr = pc.cast(arr, pa.timestamp("s"))
    ints = pc.cast(arr, pa.int64())
    unit = arr.type.unit
    scale = UNIT_SCALE[unit]
    np_ints = ints.to_numpy(zero_copy_only=False)
    valid = ints.is_valid().to_numpy(zero_copy_only=False) if ints.null_count else None
    vals = np_ints if valid is None else np_ints[valid]
    for new_unit, div in (("s", scale), ("ms", scale // 1000), ("us", scale // 1_000_000)):
        if div >= 1 and (vals % div == 0).all():
            return pa.array(np_ints // div, mask=None if valid is None else ~valid), new_unit
    return ints, unit


def _float_times(arr: pa.Array, where: str, line: RowLines) -> pa.Array:
    """Float epochs: NaN is missing; not finite or beyond int64 is an error; all integral -> int64."""
    arr = pc.cast(arr, pa.float64())
    arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, pa.float64()), arr)
    if arr.null_count == len(arr):
        return arr
    for ok, what in (
        (pc.is_finite(arr), "is not finite"),
        (pc.less(pc.abs(arr), 2.0**63), "is out of range (beyond int64)"),
    ):
        if not pc.all(pc.fill_null(ok, True)).as_py():
            idx, val = first_bad(arr, ok)
            raise InputError(f"{where}: line {line(idx)}: timestamp {val!r} {what}; fix the row")
    integral = pc.all(pc.fill_null(pc.equal(arr, pc.floor(arr)), True)).as_py()
    lo, hi = pc.min(arr).as_py(), pc.max(arr).as_py()
    if integral and -(2.0**62) < lo and hi < 2.0**62:
        return pc.cast(arr, pa.int64())
    return arr


def normalize_rating(col: pa.ChunkedArray, where: str, to: pa.DataType = pa.float32()) -> pa.Array:
    arr = col.combine_chunks()
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_null(arr.type):
        return pc.cast(arr, to)
    try:
        return pc.cast(pc.utf8_trim_whitespace(pc.cast(arr, pa.string())), to)
    except pa.ArrowInvalid as e:
        msg = (
            f"{where}: rating column holds non-numeric values ({one_line(e)}); pass --rating-col with a numeric column"
        )
        raise InputError(msg) from e


def _trim_ids(codes: np.ndarray, dictionary: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """CSV ids are untyped text: spaces around a field are not part of the id (``" 7"`` is ``7``).

    Works on the distinct ids; ids that become equal merge, a blank id becomes missing (-1).

    >>> _trim_ids(np.array([0, 1, 2, -1]), pa.array(["7", " 7", "  "]))[0].tolist()
    [0, 0, -1, -1]
    """
    trimmed = pc.utf8_trim_whitespace(dictionary)
    if trimmed.equals(dictionary):
        return codes, dictionary
    distinct = pc.unique(trimmed.filter(pc.not_equal(trimmed, "")))
    remap = pc.fill_null(pc.index_in(trimmed, value_set=distinct), -1).to_numpy(zero_copy_only=False)
    remap = np.append(remap.astype(np.int32), np.int32(-1))  # code -1 (missing) stays -1
    return remap[codes], distinct


def merge_ids(
    parts: list[pa.DictionaryArray], id_type: str, role: str, typed_text: bool
) -> tuple[np.ndarray, pa.Array]:
    """Unify per-input dictionaries into one; decide the id type on the (small) dictionary only.

    CSV fields are untyped text: with ``id_type="auto"`` they become int64 when every distinct id is a
    canonical integer (no sign, no leading zero, within int64). Text ids from a typed source (a Parquet
    or JSON string column: ``typed_text``) stay text.
    """
    value_types = {p.dictionary.type for p in parts}
    if len(value_types) > 1:
        parts = [pa.DictionaryArray.from_arrays(p.indices, pc.cast(p.dictionary, pa.string())) for p in parts]
    chunked = pa.chunked_array(parts)
    unified = pa.table({"c": chunked}).unify_dictionaries()["c"]
    dictionary = unified.chunk(0).dictionary if unified.num_chunks else parts[0].dictionary
    indices = pa.concat_arrays([c.indices for c in unified.chunks]) if unified.num_chunks else pa.array([], pa.int32())
    codes = pc.fill_null(pc.cast(indices, pa.int32()), -1).to_numpy(zero_copy_only=False)
    if not typed_text and (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        codes, dictionary = _trim_ids(codes, dictionary)

    if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
        if id_type == "int" and len(dictionary) == 0:  # no id at all (every one missing): nothing to refuse
            return codes.astype(np.int32, copy=False), pa.array([], pa.int64())
        if id_type == "int" or (id_type == "auto" and not typed_text):
            canonical = len(dictionary) > 0 and pc.all(pc.match_substring_regex(dictionary, _INT_RE)).as_py()
            as_int = None
            if canonical:
                try:
                    as_int = pc.cast(dictionary, pa.int64())
                except pa.ArrowInvalid:  # past int64: keep the text
                    as_int = None
            if as_int is not None:
                dictionary = as_int
            elif id_type == "int":
                bad = dictionary.filter(pc.invert(pc.match_substring_regex(dictionary, _INT_RE)))
                example = bad[0].as_py() if len(bad) else dictionary[0].as_py()
                msg = f"{role} id {example!r} is not an int64 integer but --id-type int was given; pass --id-type auto or str"
                raise InputError(msg)
    elif id_type == "str":
        dictionary = pc.cast(dictionary, pa.string())
    return codes.astype(np.int32, copy=False), dictionary


def check_nul_ids(columns: tuple[pa.DictionaryArray, ...], where: str, lines: int | RowLines) -> None:
    """A NUL byte inside an id means a corrupt file; checked on the distinct ids only."""
    line = lines if isinstance(lines, RowLines) else RowLines(lines)
    for col in columns:
        d = col.dictionary
        if not (pa.types.is_string(d.type) or pa.types.is_large_string(d.type)) or len(d) == 0:
            continue
        has_nul = pc.match_substring(d, "\x00")
        if not pc.any(has_nul).as_py():
            continue
        bad_codes = np.flatnonzero(has_nul.to_numpy(zero_copy_only=False))
        indices = pc.fill_null(col.indices, -1).to_numpy(zero_copy_only=False)
        row = int(np.flatnonzero(np.isin(indices, bad_codes))[0])
        msg = f"{where}: line {line(row)}: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        raise InputError(msg)


def merge_times(times: list[pa.Array], units: list[str]) -> tuple[pa.Array, str]:
    kinds = set(units)
    if len(kinds) > 1:
        if "epoch" in kinds:
            msg = "some inputs have numeric epoch timestamps and others ISO-8601 dates; use one kind of timestamp in every input"
            raise InputError(msg)
        finest = max(kinds, key=UNIT_SCALE.__getitem__)
        times = [
            pc.multiply(t, UNIT_SCALE[finest] // UNIT_SCALE[u]) if u != finest else t for t, u in zip(times, units)
        ]
        units = [finest] * len(units)
    if any(pa.types.is_floating(t.type) for t in times):
        times = [pc.cast(t, pa.float64()) for t in times]
    return pa.concat_arrays(times) if times else pa.array([], pa.int64()), units[0] if units else "epoch"
