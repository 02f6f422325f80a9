"""``--where``: the grammar, its three-valued logic and its type rules, against a plain-Python
reference evaluation of random predicates over random small tables (CSV and Parquet), and the
exact text of every syntax error."""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqprep
from seqprep.config import parse_where
from seqprep.errors import ConfigError, InputError
from seqprep.kernels.predicates import (
    And,
    Compare,
    IsNull,
    Not,
    Or,
    PredicateSyntaxError,
    by_code_tables,
    by_codes,
    code_tables,
    compare_numbers,
    parse,
    truth_and,
    truth_not,
    truth_or,
)

# --------------------------------------------------------------------------------------------------
# A reference: predicates as (text, row -> True / False / None), None = unknown (SQL)

OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
NUMBERS = [-2, -1.5, 0, 0.5, 1, 2, 3.25, 10]
WORDS = ["a", "b", "ab", "B", "a b", "it's", "zz"]


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _not(v):
    return None if v is None else not v


def _and(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _cmp(col, op, lit):
    return lambda row: None if row[col] is None else OPS[op](row[col], lit)


def _in(col, lits, negated):
    def f(row):
        v = row[col]
        if v is None:
            return None
        hit = any(v == x for x in lits)
        return not hit if negated else hit

    return f


def _null(col, negated):
    return lambda row: (row[col] is not None) if negated else (row[col] is None)


NUM_COLS = ["n", "k", "ts", "user"]
num_leaf = st.builds(
    lambda col, op, lit, flip: (f"{lit} {FLIP[op]} {col}" if flip else f"{col} {op} {lit}", _cmp(col, op, lit)),
    st.sampled_from(NUM_COLS), st.sampled_from(list(OPS)), st.sampled_from(NUMBERS), st.booleans(),
)
text_leaf = st.builds(
    lambda op, lit, flip: (f"{_quote(lit)} {FLIP[op]} t" if flip else f"t {op} {_quote(lit)}", _cmp("t", op, lit)),
    st.sampled_from(list(OPS)), st.sampled_from(WORDS), st.booleans(),
)
in_leaf = st.one_of(
    st.builds(
        lambda col, lits, neg: (f"{col} {'not ' if neg else ''}in [{', '.join(map(str, lits))}]", _in(col, lits, neg)),
        st.sampled_from(NUM_COLS), st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=3), st.booleans(),
    ),
    st.builds(
        lambda lits, neg: (f"t {'not ' if neg else ''}in [{', '.join(map(_quote, lits))}]", _in("t", lits, neg)),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), st.booleans(),
    ),
)
null_leaf = st.builds(
    lambda col, neg: (f"{col} is {'not ' if neg else ''}null", _null(col, neg)),
    st.sampled_from(["n", "k", "t", "ts"]), st.booleans(),
)
leaf = st.one_of(num_leaf, text_leaf, in_leaf, null_leaf)


def _combine(children):
    return st.one_of(
        st.builds(lambda c: (f"not ({c[0]})", lambda r: _not(c[1](r))), children),
        st.builds(lambda a, b: (f"({a[0]}) and ({b[0]})", lambda r: _and(a[1](r), b[1](r))), children, children),
        st.builds(lambda a, b: (f"({a[0]}) or ({b[0]})", lambda r: _or(a[1](r), b[1](r))), children, children),
    )


predicate = st.recursive(leaf, _combine, max_leaves=6)

row_st = st.fixed_dictionaries({
    "user": st.integers(1, 3),
    "ts": st.integers(0, 9),
    "n": st.one_of(st.none(), st.sampled_from([-1.5, 0.0, 0.5, 1.0, 2.0, 3.25])),
    "k": st.one_of(st.none(), st.integers(-3, 3)),
    "t": st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "B", "a b", "it's"])),
})
table_st = st.lists(row_st, min_size=1, max_size=12)


def _write_csv(path: Path, rows) -> None:
    def cell(v):
        if v is None:
            return ""
        return f'"{v}"' if isinstance(v, str) and " " in v else str(v)

    lines = ["user,item,ts,n,k,t"] + [
        ",".join(cell(v) for v in (r["user"], f"r{j}", r["ts"], r["n"], r["k"], r["t"])) for j, r in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_parquet(path: Path, rows) -> None:
    pq.write_table(
        pa.table({
            "user": pa.array([r["user"] for r in rows], pa.int64()),
            "item": pa.array([f"r{j}" for j in range(len(rows))]),
            "ts": pa.array([r["ts"] for r in rows], pa.int64()),
            "n": pa.array([r["n"] for r in rows], pa.float64()),
            "k": pa.array([r["k"] for r in rows], pa.int64()),
            "t": pa.array([r["t"] for r in rows], pa.string()),
        }),
        path,
    )


def _kept_rows(path: Path, where: list[str]) -> set[int] | None:
    """The row numbers a build keeps (its items are r0, r1, ...); None when it keeps none."""
    try:
        result = seqprep.build(path, where=where)
    except InputError as e:
        assert "no interactions left after the where step" in str(e)
        return None
    items = result.items.decode(result.sequences.items).to_pylist()
    assert len(items) == len(set(items))
    return {int(i[1:]) for i in items}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=table_st, preds=st.lists(predicate, min_size=1, max_size=3))
def test_random_predicates_keep_what_the_reference_keeps(fmt, rows, preds, tmp_path):
    path = tmp_path / f"log.{fmt}"
    (_write_csv if fmt == "csv" else _write_parquet)(path, rows)
    want = {j for j, r in enumerate(rows) if all(f(r) is True for _, f in preds)}
    assert _kept_rows(path, [text for text, _ in preds]) == (want or None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row_st, min_size=1, max_size=20), preds=st.lists(predicate, min_size=1, max_size=3), chunk=st.integers(1, 7))
def test_rows_evaluated_chunk_by_chunk_keep_what_the_reference_keeps(rows, preds, chunk, tmp_path):
    """The where step evaluates its rows a chunk at a time: chunks of a few rows (a coded test's
    tables made once, reused by every chunk; unknown rows in some chunks only) keep the same rows."""
    import seqprep.steps.where as where

    path = tmp_path / "log.csv"
    _write_csv(path, rows)
    want = {j for j, r in enumerate(rows) if all(f(r) is True for _, f in preds)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(where, "CHUNK_ROWS", chunk)
        assert _kept_rows(path, [text for text, _ in preds]) == (want or None)


@settings(max_examples=60, deadline=None)
@given(predicate)
def test_every_generated_predicate_parses_to_the_same_tree_twice(p):
    text, _ = p
    assert parse(text) == parse(" ".join(text.split(" ")) + "  ")


# --------------------------------------------------------------------------------------------------
# The tree: precedence, flipping, names, keywords


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a == 1 or b == 2 and c == 3", Or((Compare("a", "==", None, 1), And((Compare("b", "==", None, 11), Compare("c", "==", None, 22)))))),
        ("not a == 1 and b == 2", And((Not(Compare("a", "==", None, 5)), Compare("b", "==", None, 16)))),
        ("NOT (a == 1 OR b == 2)", Not(Or((Compare("a", "==", None, 6), Compare("b", "==", None, 16))))),
    ],
)
def test_precedence_not_then_and_then_or(text, tree):
    def shape(n):
        if isinstance(n, Compare):
            return ("cmp", n.name, n.op, n.at)
        if isinstance(n, Not):
            return ("not", shape(n.operand))
        return (type(n).__name__, tuple(shape(m) for m in n.operands))

    assert shape(parse(text)) == shape(tree)


def test_values_names_and_keywords():
    t = parse("-1.5e1 <= `my col`")
    assert (t.name, t.op, t.value.value, t.value.at, t.at) == ("my col", ">=", -15.0, 1, 11)
    assert parse("x == 12345678901234567890").value.value == 12345678901234567890  # an integer stays exact
    assert parse("x == 'it''s'").value.value == "it's"
    assert parse('x == "say ""hi"""').value.value == 'say "hi"'
    assert parse("`and` is NOT NULL") == IsNull("and", True, 1)
    assert parse("item_id:token != 3").name == "item_id:token"  # RecBole's typed names
    assert parse("meta.price > 0").name == "meta.price"  # a nested JSON/Parquet field
    assert parse("x>-1").value.value == -1


# --------------------------------------------------------------------------------------------------
# Syntax errors: the character and the fix, exactly

SYNTAX_ERRORS = [
    ("price >> 0", "unexpected '>' at character 8; expected a value after >: a number or a quoted string"),
    ("price = 0", "unexpected '=' at character 7; write == to test equality"),
    ("price ! 0", "unexpected '!' at character 7; write != for 'not equal', or not before a test"),
    ("price >", "unexpected end of the predicate at character 8; expected a value after >: a number or a quoted string"),
    ("price", "unexpected end of the predicate at character 6; expected a test after price: ==, !=, <, <=, >, >=, in, not in, is null or is not null"),
    ("price 0", "unexpected '0' at character 7; expected a test after price: ==, !=, <, <=, >, >=, in, not in, is null or is not null"),
    ("(price > 0", "unexpected end of the predicate at character 11; expected ) to close the ( at character 1"),
    ("price > 0)", "unexpected ')' at character 10; this ) closes no ( - remove it"),
    ("price > 0 event == 'x'", "unexpected 'event' at character 11; join two tests with and / or"),
    ("event == 'view", "unclosed ' at character 10; end the string with '"),
    ("`my col == 1", "unclosed ` at character 1; end the name with `"),
    ("a == b", "unexpected 'b' at character 6; expected a value after ==: a number or a quoted string (compare a column with a value)"),
    ("1 == 2", "unexpected '2' at character 6; expected a column name after == (a test compares a column with a value)"),
    ("a == null", "unexpected 'null' at character 6; null is not a value: write NAME is null, or NAME is not null"),
    ("a is nul", "unexpected 'nul' at character 6; expected null after is"),
    ("a not 3", "unexpected '3' at character 7; expected in after a not (or write not before the whole test)"),
    ("a in 1", "unexpected '1' at character 6; expected [ after in: a list of values such as [1, 2] or ['a', 'b']"),
    ("a in [1, 2", "unexpected end of the predicate at character 11; expected , or ] in the list of values"),
    ("a in []", "unexpected ']' at character 7; expected a value after [: a number or a quoted string"),
    ("in > 1", "unexpected 'in' at character 1; expected a column name or ( here; write `in` for a column named in"),
    ("", "the predicate is empty at character 1; write a test such as price > 0 or event == 'view'"),
    ("a > 1 and", "unexpected end of the predicate at character 10; expected a column name, a value or ("),
    ("a ~ 1", "unexpected '~' at character 3; write a test such as price > 0 or event == 'view'"),
]


@pytest.mark.parametrize(("text", "message"), SYNTAX_ERRORS)
def test_syntax_errors_point_at_the_character(text, message):
    with pytest.raises(PredicateSyntaxError) as e:
        parse(text)
    assert str(e.value) == message
    with pytest.raises(ConfigError) as c:  # the option's message quotes the predicate
        parse_where(text)
    assert str(c.value) == f'--where "{text}": {message}'


def test_a_predicate_with_double_quotes_is_quoted_with_single_ones():
    with pytest.raises(ConfigError, match=r"""^--where 'a == "x': unclosed " at character 6"""):
        parse_where('a == "x')


# --------------------------------------------------------------------------------------------------
# The kernels


def test_three_valued_logic_tables():
    T, F, U = (np.array([True]), None), (np.array([False]), None), (np.array([False]), np.array([False]))

    def val(t):
        true, known = t
        return None if known is not None and not known[0] else bool(true[0])

    for a, va in ((T, True), (F, False), (U, None)):
        assert val(truth_not(a)) == _not(va)
        for b, vb in ((T, True), (F, False), (U, None)):
            assert val(truth_and(a, b)) == _and(va, vb)
            assert val(truth_or(a, b)) == _or(va, vb)


truth_st = st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=12)


def _as_truth(values, all_known: bool):
    """A truth array of the values (None: unknown); ``known`` None when asked and every one is known."""
    true = np.array([v is True for v in values])
    known = np.array([v is not None for v in values])
    return true, None if all_known and known.all() else known


def _values(t):
    true, known = t
    assert not (true & ~(np.ones_like(true) if known is None else known)).any()  # never true where unknown
    return [None if known is not None and not k else bool(v) for v, k in zip(true, np.ones_like(true) if known is None else known)]


@given(st.data(), truth_st, st.booleans(), st.booleans())
def test_three_valued_logic_on_arrays(data, a, a_none, b_none):
    """and / or / not of truth arrays, with ``known`` given or None (every value known), element by
    element as the reference."""
    b = data.draw(st.lists(st.sampled_from([True, False, None]), min_size=len(a), max_size=len(a)))
    ta, tb = _as_truth(a, a_none), _as_truth(b, b_none)
    assert _values(truth_and(ta, tb)) == [_and(x, y) for x, y in zip(a, b)]
    assert _values(truth_or(ta, tb)) == [_or(x, y) for x, y in zip(a, b)]
    assert _values(truth_not(ta)) == [_not(x) for x in a]


@given(
    st.lists(st.booleans(), min_size=1, max_size=6).flatmap(
        lambda per: st.tuples(
            st.just(np.array(per)),
            st.one_of(st.none(), st.lists(st.booleans(), min_size=len(per), max_size=len(per)).map(np.array)),
            st.lists(st.integers(-1, len(per) - 1), max_size=20).map(lambda c: np.array(c, dtype=np.int32)),
        )
    )
)
def test_a_test_decided_per_distinct_value_is_the_test_of_each_row(case):
    """A test decided on a coded column's distinct values, looked up by the rows' codes (from the
    tables made once, any slice of the rows at a time), is the test of each row's decoded value;
    a missing value (code -1) and a value whose test is unknown are unknown."""
    per_value, known, codes = case
    want = [None if c < 0 or (known is not None and not known[c]) else bool(per_value[c]) for c in codes.tolist()]
    tables = code_tables(per_value, known)
    assert _values(by_codes(per_value, codes, known)) == want
    for cut in range(len(codes) + 1):
        parts = [by_code_tables(tables, codes[:cut]), by_code_tables(tables, codes[cut:])]
        assert _values(parts[0]) + _values(parts[1]) == want


@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=8),
    st.sampled_from(list(OPS)),
    st.one_of(st.integers(-(2**64), 2**64), st.floats(allow_nan=False, allow_infinity=False, width=64)),
)
def test_integers_compare_exactly_with_any_number(values, op, x):
    from fractions import Fraction

    got, known = compare_numbers(np.array(values, dtype=np.int64), op, x)
    assert known is None
    assert got.tolist() == [OPS[op](Fraction(v), Fraction(x)) for v in values]
