"""What an input is, from its first bytes: its format, a CSV's separator, header and columns (RFC 4180
quotes respected), a JSON Lines file's fields, and which column plays which role."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa

from ..config import ReadOptions
from ..errors import ColumnError, InputError, column_list
from ..kernels.csvquotes import BOM, QuoteTracker
from ..records import record
from .quoting import line_of, unclosed_quote, utf8_message
from .sources import SNIFF_BYTES

__all__ = [
    "COLUMN_ALIASES",
    "ColumnRequest",
    "ID_ROLES",
    "RECBOLE_TYPES",
    "RoleFinder",
    "key_role",
    "recbole_type",
    "field_path",
    "paths_in_schema",
    "find_column",
    "CsvLayout",
    "NUM_RE",
    "resolve_columns",
    "detect_format",
    "SEP_CANDIDATES",
    "csv_layout",
    "check_text",
    "jsonl_layout",
]


#: Column names recognised for each role, compared case-insensitively and ignoring ``_``, ``-``,
#: spaces and a RecBole type suffix such as ``:token``.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("userId", "user_id", "UserID", "reviewerID", "user"),
    "item": ("movieId", "item_id", "itemId", "MovieID", "asin", "parent_asin", "item"),
    "time": ("timestamp", "ts", "time", "unixReviewTime"),
    "rating": ("rating", "overall"),
}

_REQUIRED = ("user", "item", "time")

#: Roles whose column holds ids (read as text, typed on the distinct values): a log's user and item,
#: an attribute table's key.
ID_ROLES = ("user", "item", "key")

#: (column names, where) -> role -> column: how an input's role columns are found. A log's are
#: :func:`resolve_columns` (user, item, time, rating); an attribute table has one, its key
#: (:func:`key_role`).
RoleFinder = Callable[[list[str], str], dict[str, str]]

#: The types of a RecBole atomic file's typed header (``item_id:token``, ``class:token_seq``).
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")

_FLAG = {"user": "--user-col", "item": "--item-col", "time": "--time-col", "rating": "--rating-col"}

NUM_RE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _norm(name: str) -> str:
    base = name.split(":", 1)[0] if ":" in name else name
    return re.sub(r"[\s_\-]", "", base).lower()


def recbole_type(column: str) -> str | None:
    """The RecBole type of a typed-header column name (``class:token_seq`` -> ``token_seq``), else None.

    >>> recbole_type("class:token_seq"), recbole_type("rating:float"), recbole_type("a:b"), recbole_type("genre")
    ('token_seq', 'float', None, None)
    """
    base, sep, typ = column.rpartition(":")
    return typ if sep and base and typ in RECBOLE_TYPES else None


def _untyped(column: str) -> str:
    """A column name without its RecBole type suffix (``class:token_seq`` -> ``class``)."""
    return column.rpartition(":")[0] if recbole_type(column) else column


def resolve_columns(columns: list[str], opts: ReadOptions, where: str) -> dict[str, str]:
    """Map each role (user, item, time, rating) to a column name; rating is optional.

    >>> resolve_columns(["userId", "movieId", "rating", "timestamp"], ReadOptions(), "f")
    {'user': 'userId', 'item': 'movieId', 'time': 'timestamp', 'rating': 'rating'}
    """
    listing = column_list(columns)
    found: dict[str, str] = {}
    for role in ("user", "item", "time", "rating"):
        explicit = opts.role_column(role)
        if explicit is not None:
            if explicit in columns:
                found[role] = explicit
                continue
            ci = [c for c in columns if c.lower() == explicit.lower()]
            if len(ci) == 1:
                found[role] = ci[0]
                continue
            msg = f"{where}: column {explicit!r} ({_FLAG[role]}) not found; columns are {listing}"
            raise ColumnError(msg)
        aliases = {_norm(a) for a in COLUMN_ALIASES[role]}
        hits = [c for c in columns if _norm(c) in aliases and c not in found.values()]
        if len(hits) > 1:
            msg = (
                f"{where}: ambiguous {role} column: {', '.join(repr(h) for h in hits)} all match; "
                f"pass {_FLAG[role]} NAME to choose one"
            )
            raise ColumnError(msg)
        if hits:
            found[role] = hits[0]
        elif role in _REQUIRED:
            hint = ""
            if any(NUM_RE.match(c) for c in columns):
                hint = " (the first line looks like data: pass --no-header --names user,item,rating,timestamp)"
            msg = f"{where}: no {role} column found; columns are {listing} - pass {_FLAG[role]} NAME{hint}"
            raise ColumnError(msg)
    return found


@record
class ColumnRequest:
    """A column of the log to read besides the roles (a feature, a ``--where`` operand).

    ``name`` as the user wrote it; in JSON Lines and Parquet ``a.b`` is field ``b`` of the object
    (struct) ``a`` when no column is named ``a.b``. ``read_as``: ``number`` (float64; text is an
    error), ``text`` (the distinct values as they are), or ``auto`` (numbers of a typed source stay
    numbers, lists stay lists, anything else is text). ``flag`` names the option in messages.
    """

    name: str
    read_as: Literal["text", "number", "auto"] = "auto"
    flag: str = "--feature"


def find_column(name: str, columns: list[str], flag: str, where: str) -> str:
    """The column ``name`` of ``columns``: exactly, else the one that matches ignoring case.

    A RecBole typed header's column matches without its type: ``class`` finds ``class:token_seq``.

    >>> find_column("Genre", ["user", "genre"], "--feature", "f"), find_column("class", ["class:token_seq"], "--feature", "f")
    ('genre', 'class:token_seq')
    """
    if name in columns:
        return name
    ci = [c for c in columns if c.lower() == name.lower()]
    if len(ci) == 1:
        return ci[0]
    typed = [c for c in columns if _untyped(c).lower() == name.lower()]  # RecBole: class -> class:token_seq
    if len(typed) == 1:
        return typed[0]
    msg = f"{where}: column {name!r} ({flag}) not found; columns are {column_list(columns)}"
    raise ColumnError(msg)


def key_role(name: str | None, flag: str, aliases: tuple[str, ...]) -> RoleFinder:
    """The role finder of an attribute table: its one role, ``key``, is the column ``name`` (found
    as :func:`find_column` finds it), else the one column named like ``aliases`` (case, ``_``, ``-``,
    spaces and a RecBole type suffix ignored).

    >>> key_role(None, "--item-key", ("movieId", "item_id"))(["item_id:token", "class:token_seq"], "f")
    {'key': 'item_id:token'}
    """

    def find(columns: list[str], where: str) -> dict[str, str]:
        if name is not None:
            return {"key": find_column(name, columns, flag, where)}
        wanted = {_norm(a) for a in aliases}
        hits = [c for c in columns if _norm(c) in wanted]
        if len(hits) == 1:
            return {"key": hits[0]}
        what = "no key column found" if not hits else f"ambiguous key column: {', '.join(map(repr, hits))} all match"
        msg = f"{where}: {what}; columns are {column_list(columns)} - pass {flag} NAME"
        raise ColumnError(msg)

    return find


def field_path(request: ColumnRequest, columns: list[str], where: str) -> tuple[str, str | None]:
    """(top-level column, nested field or None) of a request in a typed source (JSON, Parquet)."""
    try:
        return find_column(request.name, columns, request.flag, where), None
    except ColumnError:
        if "." not in request.name:
            raise
        top, _, sub = request.name.partition(".")
        try:
            return find_column(top, columns, request.flag, where), sub
        except ColumnError:
            msg = f"{where}: column {request.name!r} ({request.flag}) not found; columns are {column_list(columns)}"
            raise ColumnError(msg) from None


def paths_in_schema(requests: tuple[ColumnRequest, ...], schema: pa.Schema) -> dict[str, tuple[str, str | None]]:
    """Where each request is in a JSON Lines schema made by :func:`jsonl_layout`."""
    out: dict[str, tuple[str, str | None]] = {}
    for req in requests:
        top, sub = field_path(req, schema.names, "")
        out[req.name] = (top, sub)
    return out


def detect_format(name: str, opts: ReadOptions, head: bytes) -> str:
    """``csv``, ``jsonl`` or ``parquet``: ``--input-format``, else by the extension of ``name`` (the
    file's name without its compression extension), else by content."""
    if opts.input_format != "auto":
        return opts.input_format
    if name.endswith((".parquet", ".pq")) or head.startswith(b"PAR1"):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    stripped = head.lstrip(BOM + b" \t\r\n")
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


SEP_CANDIDATES = ("::", "\t", ",", ";", "|")


def _head_records(text: str, sep: str, *, cut: bool) -> list[list[str]]:
    """The first (up to 6) non-empty records of the sniffed text, split by the csv module: quoted
    fields may hold the separator, doubled quotes and line ends (the last record of a ``cut`` head
    may be incomplete and is dropped, unless it is the only one).

    >>> _head_records('a,"b\\nc",d\\n\\n"x""y",2,3\\n', ",", cut=False)
    [['a', 'b\\nc', 'd'], ['x"y', '2', '3']]
    """
    records: list[list[str]] = []
    if len(sep) == 1:
        try:
            records = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=sep), 7))
        except csv.Error:  # not CSV as the csv module reads it: split the lines as they are
            records = []
    if not records:  # (the first 8 non-empty lines are all it takes: never a split of the whole head)
        records = [line.split(sep) for line in itertools.islice(filter(None, text.splitlines()), 8)]
    records = [r for r in records if r]
    if cut and len(records) > 1:
        records = records[:-1]
    return records[:6]


def _sniff_sep(text: str, lines: list[str], where: str, *, cut: bool) -> str:
    """The separator whose field count agrees over the first records (quotes respected), else the
    first candidate found on line 1."""
    for cand in SEP_CANDIDATES:
        records = _head_records(text, cand, cut=cut)
        n = len(records[0]) - 1 if records else 0
        if n and all(len(r) - 1 == n for r in records[1:3]):
            return cand
    first = lines[0]
    for cand in SEP_CANDIDATES:
        if cand in first:
            return cand
    msg = f"{where}: cannot tell the column separator from the first line {first[:60]!r}; pass --sep"
    raise InputError(msg)


def _check_quotes_in_head(head: bytes, sep: str, where: str, *, cut: bool) -> None:
    """A quote that is open at the end of the whole (short) file, or still open at the end of a cut
    head that has not ended the first row, is an error naming the line it opens on."""
    if len(sep) > 1 or b'"' not in head:
        return
    t = QuoteTracker(ord(sep), bom=True)
    row_ends = t.feed(np.frombuffer(head, np.uint8), breaks=True)
    if not cut:
        t.finish()
    if t.inside and (not cut or len(row_ends) == 0):
        line = line_of(head, t.opened_at)
        if cut:
            msg = (
                f"{where}: line {line}: a quoted field starts here and does not end within the first "
                f'{SNIFF_BYTES // 1024} KiB; close the quote (") or pass the right --sep'
            )
            raise InputError(msg)
        raise unclosed_quote(where, line)


class CsvLayout(NamedTuple):
    """A CSV's separator, column names, whether line 1 is a header, and role -> column."""

    sep: str
    names: list[str]
    header: bool
    roles: dict[str, str]


def csv_layout(where: str, opts: ReadOptions, head: bytes, roles: RoleFinder | None = None) -> CsvLayout:
    """Sniff a CSV (``where`` names it in errors) from its first bytes -> its :class:`CsvLayout`.

    The separator and the first record are found with a CSV tokenizer (the csv module: RFC 4180
    quotes, as pyarrow reads them), so quoted fields in the first lines may hold separators and
    line ends. ``roles`` finds the role columns (default: a log's, :func:`resolve_columns`).
    """
    cut = len(head) == SNIFF_BYTES
    check_text(head, where, cut=cut)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if cut and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    lines = [ln for ln in lines[:6]]
    if not lines or not lines[0].strip():
        if text.strip():
            msg = f"{where}: line 1 is blank; remove the blank line(s) before the header or first row"
            raise InputError(msg)
        msg = f"{where}: the log is empty; pass a file with a header line and interaction rows"
        raise InputError(msg)
    sep = opts.sep if opts.sep is not None else _sniff_sep(text, lines, where, cut=cut)
    _check_quotes_in_head(head, sep, where, cut=cut)
    records = _head_records(text, sep, cut=cut)
    fields_ = [f.strip() for f in records[0]] if records else [""]
    if len(fields_) == 1 and opts.sep is not None:
        seen = [c for c in SEP_CANDIDATES if c in lines[0] and c != sep]
        if seen:
            msg = f"{where}: line 1 has a single column with --sep {sep!r} but contains {seen[0]!r}; pass --sep {seen[0]!r}"
            raise InputError(msg)

    if opts.header is not None:
        header = opts.header
    elif opts.names is not None:
        header = False
    else:
        header = not all(NUM_RE.match(f) for f in fields_ if f != "")

    if opts.names is not None:
        names = list(opts.names)
        if len(names) != len(fields_):
            msg = (
                f"{where}: --names gives {len(names)} names but the file has {len(fields_)} columns "
                f"(separator {sep!r}); give one name per column"
            )
            raise ColumnError(msg)
    elif header:
        names = fields_
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            msg = f"{where}: column name {dup[0]!r} appears more than once in the header; pass --names with distinct names"
            raise ColumnError(msg)
    elif len(fields_) == 4:
        names = ["user", "item", "rating", "timestamp"]  # MovieLens u.data / ratings.dat layout
    elif len(fields_) == 3:
        names = ["user", "item", "timestamp"]
    else:
        msg = f"{where}: no header line and {len(fields_)} columns; pass --names with one name per column, e.g. user,item,rating,timestamp"
        raise ColumnError(msg)

    found = resolve_columns(names, opts, where) if roles is None else roles(names, where)
    return CsvLayout(sep, names, header, found)


def check_text(head: bytes, where: str, *, cut: bool) -> None:
    """The first block of a CSV holds no NUL byte (a NUL means a corrupt file) and line 1 is UTF-8.

    Later lines are checked by the CSV reader, in the columns that are used only: a Latin-1 text
    column that seqprep does not read is no reason to fail.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        msg = f"{where}: the file is UTF-16 text; convert it to UTF-8 (e.g. iconv -f utf-16 -t utf-8)"
        raise InputError(msg)
    nul = head.find(b"\x00")
    if nul >= 0:
        msg = f"{where}: line {line_of(head, nul)}: NUL byte (0x00) in the text; the file is corrupt or not a text log - repair or regenerate it"
        raise InputError(msg)
    end = head.find(b"\n")
    first = head if end < 0 else head[:end]
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as e:
        if end < 0 and cut and e.start >= len(head) - 3:  # a character cut by the end of the block
            return
        raise utf8_message(head, e.start, where) from None


def _json_type(v: Any, role: str) -> pa.DataType:
    if role in ID_ROLES:
        return pa.int64() if isinstance(v, int) and not isinstance(v, bool) else pa.string()
    if role == "rating":
        return pa.float64()
    if isinstance(v, bool) or v is None:
        return pa.string()
    if isinstance(v, int):
        return pa.int64()
    if isinstance(v, float):
        return pa.float64()
    return pa.string()


def jsonl_layout(
    where: str,
    opts: ReadOptions,
    head: bytes,
    requests: tuple[ColumnRequest, ...] = (),
    time_as_float: bool = False,
    roles: RoleFinder | None = None,
) -> tuple[dict[str, str], pa.Schema]:
    """Roles and the explicit schema of a JSON Lines input (with the requested columns), from its
    first line. ``time_as_float``: a number timestamp read as float64 (a later line has a fraction).
    ``roles`` finds the role columns (default: a log's, :func:`resolve_columns`)."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first_line = next((ln for ln in text.splitlines() if ln.strip()), None)
    if first_line is None:
        msg = f"{where}: the log is empty; pass a JSON Lines file with one object per line"
        raise InputError(msg)
    try:
        first = json.loads(first_line)
    except json.JSONDecodeError as e:
        msg = f"{where}: line 1 is not JSON ({e.msg}); JSON Lines needs one JSON object per line (Python-literal dumps must be converted first)"
        raise InputError(msg) from e
    if not isinstance(first, dict):
        msg = f"{where}: line 1 is not a JSON object; JSON Lines needs one object per line"
        raise InputError(msg)
    found = resolve_columns(list(first.keys()), opts, where) if roles is None else roles(list(first.keys()), where)
    types = {found[r]: _json_type(first.get(found[r]), r) for r in found}
    if time_as_float and "time" in found and pa.types.is_integer(types[found["time"]]):
        types[found["time"]] = pa.float64()
    nested: dict[str, dict[str, pa.DataType]] = {}
    for req in requests:
        top, sub = field_path(req, list(first.keys()), where)
        if sub is None:
            types.setdefault(top, _json_request_type(first.get(top), req))
        else:
            value = first.get(top)
            nested.setdefault(top, {})[sub] = _json_request_type(value.get(sub) if isinstance(value, dict) else None, req)
    for top, fields in nested.items():
        types[top] = pa.struct(list(fields.items()))
    return found, pa.schema(list(types.items()))


def _json_request_type(v: Any, req: ColumnRequest) -> pa.DataType:
    """The JSON reader's type for a requested column, from its first value (bools read as bools)."""
    if req.read_as == "number":
        return pa.float64()
    if isinstance(v, bool):
        return pa.bool_()
    if isinstance(v, list):
        return pa.list_(pa.string())
    if isinstance(v, (int, float)):  # numbers: float64 for a number; as they are for text values
        return pa.float64() if req.read_as == "auto" or isinstance(v, float) else pa.int64()
    return pa.string()
