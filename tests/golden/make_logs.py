"""Write the small logs the golden test builds (tests/golden/logs/); committed, so they never drift.

    python tests/golden/make_logs.py

Deterministic (numpy seeds). The logs carry what a build must get right: equal timestamps within a
user, rows out of time order, repeated user-item pairs (some identical rows), a few missing fields,
ids ``007`` beside ``7`` (text ids), a second log with new users and items (several inputs,
vocabulary reuse), seconds-like epoch times (sessions) and ISO dates.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LOGS = Path(__file__).with_name("logs")


def _rows(seed: int, n: int, users: int, items: int, first_user: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, items + 1) ** 0.9
    user = rng.integers(first_user, first_user + users, size=n)
    item = rng.choice(np.arange(1, items + 1), size=n, p=pop / pop.sum()) * 3 + 10  # sparse ids
    base = 1_500_000_000 + (user - first_user) * 50_000
    ts = base + rng.choice([0, 1, 60, 1800, 7200, 86_400], size=n) * rng.integers(0, 6, size=n)
    rating = rng.integers(1, 11, size=n) / 2
    dup = rng.random(n) < 0.05  # identical rows
    for col in (user, item, ts, rating):
        col[1:][dup[1:]] = col[:-1][dup[1:]]
    return {"user": user, "item": item, "rating": rating, "ts": ts}


def _csv(rows: dict[str, np.ndarray], blanks: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    lines = ["userId,movieId,rating,timestamp"]
    n = len(rows["user"])
    blank_at = {int(k): int(rng.integers(0, 4)) for k in rng.choice(n, size=blanks, replace=False)}
    for k in range(n):
        fields = [str(rows["user"][k]), str(rows["item"][k]), f"{rows['rating'][k]:.1f}", str(rows["ts"][k])]
        if k in blank_at:
            fields[blank_at[k]] = ""
        lines.append(",".join(fields))
    return "\n".join(lines) + "\n"


def main() -> None:
    LOGS.mkdir(exist_ok=True)
    a = _rows(1, 2500, 120, 260)
    (LOGS / "log.csv").write_text(_csv(a, blanks=12, seed=2), encoding="utf-8")
    with gzip.GzipFile(LOGS / "log.csv.gz", "wb", mtime=0) as fh:
        fh.write((LOGS / "log.csv").read_bytes())
    b = _rows(3, 900, 60, 320, first_user=90)  # users 90..149: some shared with log.csv, some new
    (LOGS / "log2.csv").write_text(_csv(b, blanks=3, seed=4), encoding="utf-8")

    # JSON Lines with text ids: 007 beside 7, u-prefixed users; fractional timestamps
    c = _rows(5, 1200, 50, 120)
    with open(LOGS / "events.jsonl", "w", encoding="utf-8") as fh:
        for u, i, r, t in zip(c["user"], c["item"], c["rating"], c["ts"]):
            item = f"00{i}" if i % 4 == 1 else str(i)
            rec = {"reviewerID": f"u{u}" if u % 3 else f"0{u}", "asin": item, "overall": float(r)}
            rec["unixReviewTime"] = int(t) + (0.5 if i % 7 == 0 or fh.tell() == 0 else 0)  # float from line 1
            fh.write(json.dumps(rec) + "\n")

    # Parquet with ISO-date strings and a ms-resolution time column
    d = _rows(7, 800, 40, 90)
    iso = pa.array(d["ts"] * 1000, pa.timestamp("ms")).cast(pa.string())
    pq.write_table(
        pa.table({"user_id": d["user"], "item_id": d["item"].astype(str), "time": iso, "rating": d["rating"]}),
        LOGS / "log.parquet",
    )
    print(f"wrote {', '.join(sorted(p.name for p in LOGS.iterdir()))}")


if __name__ == "__main__":
    main()
