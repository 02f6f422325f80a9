"""``seqprep stats`` for a terminal: the summaries side by side, one column per PATH."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .source import SPLITS
from .summary import RARE_ITEM

TOP_SHOWN = 3  # most frequent values of a feature shown in the terminal report (--json has more)

__all__ = ["format_report", "histogram_lines"]


def _int(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _items(k: int) -> str:
    return f"{k:,} item" + ("" if k == 1 else "s")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) < 1e6 else f"{x:,.0f}"


def _flat_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True)
    return _int(v)


def _step_rows(steps: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(step number, label, value) rows for the per-step filtering report, whatever keys a step has."""
    rows: list[tuple[int, str, str]] = []
    for k, step in enumerate(steps, 1):
        name = str(step.get("step", f"step {k}"))
        before, removed, after = step.get("rows_before"), step.get("rows_removed"), step.get("rows_after")
        rows.append((k, f"{k}. {name}", f"{_int(before)} -> {_int(after)} rows (-{_int(removed)})"))
        for key, value in step.items():
            if key in ("step", "rows_before", "rows_removed", "rows_after"):
                continue
            if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
                for j, item in enumerate(value, 1):  # e.g. k-core rounds: one row each
                    rows.append((k, f"   {key} {j}", ", ".join(f"{a} {_flat_value(b)}" for a, b in item.items())))
            else:
                rows.append((k, f"   {key}", _flat_value(value)))
    return rows


class _Rows:
    """Ordered (section, label) -> value cells of one column; a section header has label ''."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], str] = {}
        self.section = ""

    def head(self, section: str) -> None:
        self.section = section
        self.cells[(section, "")] = ""

    def add(self, label: str, value: str) -> None:
        self.cells[(self.section, label)] = value


def _rows_for(s: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(section, label) -> value for one summary, in display order."""
    sl, pop, t, d, ties = s["sequence_length"], s["popularity"], s["time"], s["duplicates"], s["ties"]
    r = _Rows()
    r.add("kind", {"raw": "raw log", "built": "built folder", "split": "training split"}[s["kind"]])
    r.add("rows read / kept", f"{_int(s['rows']['read'])} / {_int(s['rows']['kept'])}")
    r.add("users", _int(s["users"]))
    if s["sessions"] is not None:  # keyed by session: the "users" above are the sessions
        ses = s["sessions"]
        r.add(f"sessions ({ses['key']})", _int(ses["sessions"]))
        r.add("users of the sessions", f"{_int(ses['users'])} ({_int(ses['sessions_without_user'])} sessions without)")
    r.add("items", _int(s["items"]))
    r.add("interactions", _int(s["interactions"]))
    r.add("density", f"{100 * s['density']:.4f}%")
    r.head("sequence length")
    for key in ("min", "p10", "p25", "median", "mean", "p75", "p90", "p99", "max"):
        v = sl[key]
        r.add(key, _int(v) if isinstance(v, int) else f"{v:,.1f}")
    r.head("item popularity")
    r.add("top 1% of items", f"{_pct(pop['top_1pct_share'])} ({_items(pop['top_1pct_items'])})")
    r.add("top 10% of items", f"{_pct(pop['top_10pct_share'])} ({_items(pop['top_10pct_items'])})")
    r.add("gini", f"{pop['gini']:.3f}")
    r.add(f"items < {RARE_ITEM} interactions", f"{_int(pop['items_below_5'])} ({_pct(pop['items_below_5_share'])})")
    r.head("time (UTC)")
    r.add("first", t["first_utc"] or _flat_value(t["first"]))
    r.add("last", t["last_utc"] or _flat_value(t["last"]))
    pm = t["per_month"]
    if pm is not None:
        r.add("span", f"{t['span_days']:,.1f} days")
        r.add("months", _int(t["months"]))
        r.add("per month mean / median", f"{_num(pm['mean'])} / {_num(pm['median'])}")
        r.add("busiest month", f"{pm['busiest']} ({_int(pm['max'])})")
    r.head("duplicates")
    r.add("identical rows", _int(d["identical_rows"]))
    r.add("repeated user-item pairs", _int(d["repeated_pairs"]))
    r.add("consecutive repeats", _int(d["consecutive_repeats"]))
    r.head("ties (same user, same timestamp)")
    r.add("interactions in ties", f"{_int(ties['interactions'])} ({_pct(ties['share'])})")
    r.add("tie groups", _int(ties["groups"]))
    rt = s["ratings"]
    r.head("ratings")
    if rt is None:
        r.add("(none)", "-")
    else:
        r.add("mean", f"{rt['mean']:.3f}" if rt["mean"] is not None else "-")
        if rt["missing"]:
            r.add("missing", _int(rt["missing"]))
        if rt["counts"] is None:
            r.add("distinct values", _int(rt["distinct"]))
        else:
            total = max(1, sum(c["count"] for c in rt["counts"]))
            for c in rt["counts"]:
                r.add(f"{c['value']:g}", f"{_int(c['count'])} ({_pct(c['count'] / total)})")
    if s["features"]:
        r.head("features")
        for f in s["features"]:
            r.add(f"{f['name']} ({f['kind']})", _feature_cell(f))
            if f["top"]:
                top = "; ".join(f"{t['value']} {_pct(t['share'])}" for t in f["top"][:TOP_SHOWN])
                r.add(f"  {f['name']}: top", top)
    r.head("filtering steps")
    for k, label, value in _step_rows(s["steps"]):
        r.section = f"filtering steps/{k}"  # keys of one step never merge with another step's
        r.add(label, value)
    if s["splits"] is not None:
        r.head("splits")
        rule = s["splits"].get("rule")
        if isinstance(rule, dict):
            for key, value in rule.items():
                if key != "sizes":  # shown below, one row per part
                    r.add(key, _flat_value(value))
        for name in SPLITS:
            part = s["splits"].get(name)
            if part is not None:
                r.add(f"{name} users / interactions", f"{_int(part['users'])} / {_int(part['interactions'])}")
    _attribute_rows(r, s.get("attributes"))
    return r.cells


def _feature_cell(f: dict[str, Any]) -> str:
    """One feature in a line: how many values, how many missing, and what kind of values."""
    parts = [] if f["values"] is None else [f"{_int(f['values'])} values"]
    parts.append(f"{_pct(f['missing_share'])} missing")
    if f["numbers"] is not None:
        n = f["numbers"]
        parts.append(f"{n['min']:g} .. {n['max']:g}, mean {n['mean']:.3g}")
    if f["tokens_per_interaction"] is not None:
        parts.append(f"{f['tokens_per_interaction']['mean']:.1f} per interaction")
    if f["oov"]:
        parts.append(f"{_int(f['oov'])} oov")
    return ", ".join(parts)


def _attribute_rows(r: _Rows, attributes: dict[str, Any] | None) -> None:
    """The item / user attribute tables' coverage of the kept items and users."""
    for role, table in (attributes or {}).items():
        if table is None:
            continue
        r.head(f"{role} attributes")
        kept = table["with_row"] + table["without_row"]
        r.add(f"{role}s with a table row", f"{_int(table['with_row'])} / {_int(kept)} ({_pct(table['with_row'] / kept if kept else 0.0)})")
        r.add("table rows ignored", f"{_int(table['rows_ignored'])} of {_int(table['table_rows'])}")
        for c in table["coverage"]:
            label = f"{c['name']} ({c['kind']}" + ("" if c["values"] is None else f", {_int(c['values'])} values") + ")"
            r.add(label, f"{_int(c['with_value'])} ({_pct(c['share'])})")


def _bar(count: int, top: int, width: int) -> str:
    """A horizontal bar of ``count / top * width`` cells in eighth-block characters."""
    if top <= 0 or count <= 0:
        return ""
    eighths = max(1, round(8 * width * count / top))
    full, rest = divmod(eighths, 8)
    return "█" * full + ("" if rest == 0 else "▏▎▍▌▋▊▉"[rest - 1])


def histogram_lines(s: dict[str, Any], width: int = 40) -> list[str]:
    """The sequence-length histogram of one summary, one line per log-spaced bin (users per bin)."""
    edges, counts = s["length_histogram"]["edges"], s["length_histogram"]["counts"]
    if not counts:
        return []
    labels = [f"{a:,}" if b - a == 1 else f"{a:,}-{b - 1:,}" for a, b in zip(edges[:-1], edges[1:])]
    lw = max(len(x) for x in labels)
    top = max(counts)
    cw = len(f"{top:,}")
    return [f"  {lab:>{lw}} │{_bar(c, top, width):<{width}} {c:>{cw},}" for lab, c in zip(labels, counts)]


def format_report(summaries: list[dict[str, Any]], style: Callable[[str], str] = str) -> str:
    """Several summaries side by side (a column per path), then each one's length histogram.

    ``style`` decorates section headers (the CLI passes bold; identity by default: no ANSI codes).
    """
    columns = [_rows_for(s) for s in summaries]
    keys: list[tuple[str, str]] = []
    for col in columns:  # merge: a key first seen in a later column goes right after its predecessor
        at = 0
        for key in col:
            if key in keys:
                at = keys.index(key) + 1
            else:
                keys.insert(at, key)
                at += 1
    indent = "  "
    lw = max(len(indent + label) if section else len(label) for section, label in keys) + 2
    heads = [s["path"] for s in summaries]
    widths = [max(len(h), *(len(v) for v in col.values())) for h, col in zip(heads, columns)]
    lines = [" " * lw + "  ".join(f"{h:>{w}}" for h, w in zip(heads, widths))]
    for section, label in keys:
        if not label:
            lines.append(style(section))
            continue
        cells = [col.get((section, label), "-") for col in columns]
        text = indent + label if section else label
        lines.append(f"{text:<{lw}}" + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    for s in summaries:
        lines.append("")
        lines.append(style(f"sequence length histogram: {s['path']} (users per length bin)"))
        lines.extend(histogram_lines(s))
    return "\n".join(lines)
