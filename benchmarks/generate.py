"""Generate synthetic MovieLens-25M-shaped interaction logs for benchmarking.

The output is a CSV with the MovieLens header ``userId,movieId,rating,timestamp``:

* user activity is heavy-tailed (``20 + lognormal``, calibrated on ml-25m: median
  ~70, mean ~154, max in the tens of thousands), at least 20 rows per user;
* item popularity is Zipf-like (exponent ``--zipf``, default 1.0) over a catalogue of
  sparse item ids (like movieId, ids are not contiguous); (user, item) pairs are
  unique, as in MovieLens;
* timestamps are int64 epoch seconds in 1995..2020; about ``--tie-rate`` (20%) of a
  user's interactions share their second with the previous one;
* ratings are half stars 0.5..5.0 written as ``3.5`` / ``4.0``, with the ml-25m mix.

``--order user`` groups rows by user and, within a user, sorts them by item id (as
the real ml-25m file: *not* by time); ``--order time`` groups rows by user (ids ascending)
and, within a user, by timestamp (equal timestamps in generation order: the log is already
in seqprep's output order); ``--order shuffled`` writes a random permutation.
``--id-kind str28`` writes 28-character upper-case alphanumeric user and item ids
(like Amazon Reviews 2023) instead of integers. ``--features`` adds three interaction columns
for ``--feature`` benchmarks: ``genre`` (20 values, one per item, Zipf-skewed), ``shop`` (about
10,000 values, Zipf-drawn per row) and ``price`` (a number with two decimals, per item, with a
per-row discount now and then); header ``userId,movieId,rating,timestamp,genre,shop,price``.
``--extra event,price`` (not with ``--features``) appends columns the
build does not read unless asked (``--where``): ``event`` (text: ``view`` 70%, ``cart`` 20%,
``buy`` 10%) and ``price`` (``0.01``..``500.00`` with two decimals, empty on 5% of the rows); they
come from their own generator, so the other columns are those of the same ``--seed`` without them.

Everything is vectorised numpy and deterministic given ``--seed``.  Example::

    python benchmarks/generate.py --rows 25000000 --users 162000 --items 60000 \\
        --order user --seed 0 -o /tmp/bench/ml25m_user.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HEADER = b"userId,movieId,rating,timestamp\n"
T_MIN = 789_652_009  # 1995-01-09, first ml-25m timestamp
T_MAX = 1_574_327_703  # 2019-11-21, last ml-25m timestamp
MIN_PER_USER = 20
RATING_VALUES = ["0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0"]
RATING_PROBS = np.array([1.6, 3.1, 1.6, 6.6, 5.0, 19.6, 12.6, 26.6, 8.5, 14.4])
ID_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
CHUNK_ROWS = 2_000_000


def user_lengths(rng: np.random.Generator, rows: int, users: int, items: int) -> np.ndarray:
    """Per-user interaction counts: ``>= 20``, ``<= items // 2``, heavy-tailed, summing to ``rows``."""
    if users * MIN_PER_USER > rows:
        raise SystemExit(f"--rows must be >= {MIN_PER_USER} * --users")
    cap = max(MIN_PER_USER, items // 2)
    if users * cap < rows:
        raise SystemExit("--items too small for --rows/--users without duplicate pairs")
    weights = rng.lognormal(mean=3.93, sigma=1.39, size=users)
    extra = rows - MIN_PER_USER * users
    counts = MIN_PER_USER + np.floor(weights / weights.sum() * extra).astype(np.int64)
    counts = np.minimum(counts, cap)
    while (missing := rows - int(counts.sum())) > 0:  # rounding / capping leftovers
        room = np.flatnonzero(counts < cap)
        take = rng.choice(room, size=min(missing, room.size), replace=False)
        counts[take] += 1
    return counts


def zipf_sampler(rng: np.random.Generator, items: int, exponent: float) -> Callable[[int], np.ndarray]:
    """Return ``draw(n) -> item ranks (0-based)`` following a Zipf law over ``items``."""
    cdf = np.cumsum(1.0 / np.arange(1, items + 1, dtype=np.float64) ** exponent)
    cdf /= cdf[-1]

    def draw(n: int) -> np.ndarray:
        ranks = np.searchsorted(cdf, rng.random(n), side="right")
        return np.minimum(ranks, items - 1).astype(np.int32)

    return draw


def unique_items(
    rng: np.random.Generator, user: np.ndarray, item: np.ndarray, items: int, draw: Callable[[int], np.ndarray]
) -> None:
    """Resample ``item`` in place until every (user, item) pair is unique."""
    idx = np.arange(user.size)
    for round_ in range(1000):
        key = user[idx].astype(np.int64) * items + item[idx]
        order = np.argsort(key, kind="stable")
        dup_sorted = np.flatnonzero(key[order][1:] == key[order][:-1]) + 1
        if dup_sorted.size == 0:
            return
        dup = idx[order[dup_sorted]]
        # Zipf first; fall back to uniform so heavy users reach the tail quickly.
        new = draw(dup.size) if round_ < 8 else rng.integers(0, items, dup.size, dtype=np.int32)
        item[dup] = new
        bad_users = np.zeros(int(user.max()) + 1, dtype=bool)
        bad_users[user[dup]] = True
        idx = np.flatnonzero(bad_users[user])  # only re-check affected users
    raise RuntimeError("could not make (user, item) pairs unique")


def timestamps(rng: np.random.Generator, counts: np.ndarray, user: np.ndarray, tie_rate: float) -> np.ndarray:
    """Per-row epoch seconds, increasing within each user's block, with ties."""
    n = user.size
    u = rng.random(n)
    gaps = np.where(u < tie_rate, 0.0, rng.exponential(60.0, n))  # same session
    gaps = np.where(u > 0.9, rng.exponential(30 * 86_400.0, n), gaps)  # new session
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    gaps[starts] = 0.0
    csum = np.cumsum(gaps)
    offsets = csum - np.repeat(csum[starts], counts)
    span = T_MAX - T_MIN
    total = offsets[starts + counts - 1]
    scale = np.minimum(1.0, span / np.maximum(total, 1.0))
    offsets = np.floor(offsets * np.repeat(scale, counts))
    begin = T_MIN + rng.random(counts.size) * (span - total * scale)
    return (np.repeat(np.floor(begin), counts) + offsets).astype(np.int64)


def random_ids(rng: np.random.Generator, n: int, width: int = 28) -> pa.Array:
    """``n`` distinct-with-overwhelming-probability random upper-case alnum strings."""
    chars = ID_ALPHABET[rng.integers(0, ID_ALPHABET.size, size=(n, width))]
    offsets = np.arange(n + 1, dtype=np.int64) * width
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())])


def generate(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], pa.Array, pa.Array]:
    """Build the columns (as codes) and the user / item label arrays."""
    rng = np.random.default_rng(args.seed)
    counts = user_lengths(rng, args.rows, args.users, args.items)
    user = np.repeat(np.arange(args.users, dtype=np.int32), counts)
    draw = zipf_sampler(rng, args.items, args.zipf)
    rank = draw(args.rows)
    unique_items(rng, user, rank, args.items, draw)
    ts = timestamps(rng, counts, user, args.tie_rate)
    probs = RATING_PROBS / RATING_PROBS.sum()
    rating = rng.choice(len(RATING_VALUES), size=args.rows, p=probs).astype(np.int8)

    if args.id_kind == "int":
        user_labels = pa.array(np.arange(1, args.users + 1, dtype=np.int64))
        # sparse, increasing movieIds; popularity rank -> id is a random permutation
        ids = np.sort(rng.choice(int(args.items * 3.5), size=args.items, replace=False)) + 1
        item_labels = pa.array(rng.permutation(ids).astype(np.int64))
    else:
        user_labels = random_ids(rng, args.users)
        item_labels = random_ids(rng, args.items)

    if args.order == "user":
        # within a user, order by the written item id (the ml-25m file's order)
        item_sort_key = np.argsort(np.argsort(np.asarray(item_labels.to_numpy(zero_copy_only=False))))
        key = user.astype(np.int64) * args.items + item_sort_key[rank]
        perm = np.argsort(key)
    elif args.order == "time":
        # the generation order: users ascending, each user's timestamps non-decreasing
        perm = np.arange(args.rows)
    else:
        perm = rng.permutation(args.rows)
    cols = {"user": user[perm], "item": rank[perm], "rating": rating[perm], "ts": ts[perm]}
    if args.features:
        cols.update(feature_columns(rng, rank[perm], args.items))
    return cols, user_labels, item_labels


GENRES = 20
SHOPS = 10_000


def feature_columns(rng: np.random.Generator, rank: np.ndarray, items: int) -> dict[str, np.ndarray]:
    """``--features``: genre code per row (from its item), shop code per row, price in cents."""
    genre_of_item = zipf_sampler(rng, GENRES, 1.0)(items)
    base_cents = np.round(np.exp(rng.normal(7.0, 0.8, size=items))).astype(np.int64) + 99
    shop = zipf_sampler(rng, SHOPS, 0.8)(rank.size)
    discount = np.where(rng.random(rank.size) < 0.1, 0.8, 1.0)
    return {
        "genre": genre_of_item[rank],
        "shop": shop,
        "price": np.round(base_cents[rank] * discount).astype(np.int64),
    }


EXTRA_COLUMNS = ("event", "price")
EVENTS = ["view", "cart", "buy"]


def extra_columns(names: list[str], rows: int, seed: int) -> dict[str, pa.Array]:
    """The ``--extra`` columns, from their own generator (the other columns do not change)."""
    rng = np.random.default_rng([seed, 17])
    out: dict[str, pa.Array] = {}
    for name in names:
        if name == "event":
            codes = rng.choice(len(EVENTS), size=rows, p=[0.7, 0.2, 0.1]).astype(np.int8)
            out[name] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(EVENTS))
        elif name == "price":
            cents = rng.integers(1, 50_001, size=rows)
            out[name] = pa.array(cents / 100.0, mask=rng.random(rows) < 0.05)
    return out


def write_csv(
    path: Path, cols: dict[str, np.ndarray], users: pa.Array, items: pa.Array, extra: dict[str, pa.Array] | None = None
) -> None:
    """Write the columns in chunks with pyarrow's CSV writer and a MovieLens header (then the extras)."""
    extra = extra or {}
    ratings = pa.array(RATING_VALUES)
    fields = [("userId", users.type), ("movieId", items.type), ("rating", pa.string()), ("timestamp", pa.int64())]
    features = "genre" in cols
    if features:
        fields += [("genre", pa.string()), ("shop", pa.string()), ("price", pa.string())]
        genres = pa.array([f"Genre{k:02d}" for k in range(GENRES)])
        shops = pa.array([f"shop{k:05d}" for k in range(SHOPS)])
    fields += [(name, pa.string() if name == "event" else pa.float64()) for name in extra]
    schema = pa.schema(fields)
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        names = [*(["genre", "shop", "price"] if features else []), *extra]
        fh.write(HEADER if not names else HEADER.rstrip(b"\n") + b"," + ",".join(names).encode() + b"\n")
        with pacsv.CSVWriter(fh, schema, write_options=options) as writer:
            for lo in range(0, cols["user"].size, CHUNK_ROWS):
                sl = slice(lo, lo + CHUNK_ROWS)
                arrays = [
                    users.take(pa.array(cols["user"][sl])),
                    items.take(pa.array(cols["item"][sl])),
                    ratings.take(pa.array(cols["rating"][sl])),
                    pa.array(cols["ts"][sl]),
                ]
                if features:
                    cents = cols["price"][sl]
                    whole = pa.array(cents // 100).cast(pa.string())
                    frac = pa.array(cents % 100 + 100).cast(pa.string())  # "1xx": the two decimals after the 1
                    price = pc.binary_join_element_wise(whole, pc.utf8_slice_codeunits(frac, 1), ".")
                    arrays += [genres.take(pa.array(cols["genre"][sl])), shops.take(pa.array(cols["shop"][sl])), price]
                arrays += [pc.cast(col.slice(lo, CHUNK_ROWS), schema.field(name).type) for name, col in extra.items()]
                batch = pa.record_batch(arrays, schema=schema)
                writer.write_batch(batch)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=25_000_000)
    p.add_argument("--users", type=int, default=162_000)
    p.add_argument("--items", type=int, default=60_000)
    p.add_argument("--order", choices=["user", "time", "shuffled"], default="user")
    p.add_argument("--id-kind", choices=["int", "str28"], default="int")
    p.add_argument("--zipf", type=float, default=1.0, help="item popularity exponent")
    p.add_argument("--tie-rate", type=float, default=0.2, help="share of equal-second neighbours")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--features", action="store_true", help="add genre (20), shop (~10,000) and price columns")
    p.add_argument(
        "--extra", default="", help=f"comma-separated extra columns to append: {', '.join(EXTRA_COLUMNS)} (for --where)"
    )
    p.add_argument("-o", "--output", type=Path, required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Generate and write one file, reporting timings on stderr."""
    args = parse_args(argv)
    t0 = time.perf_counter()
    cols, users, items = generate(args)
    names = [n for n in args.extra.split(",") if n]
    if any(n not in EXTRA_COLUMNS for n in names):
        raise SystemExit(f"--extra takes {', '.join(EXTRA_COLUMNS)}")
    if names and args.features:
        raise SystemExit("--extra and --features both write a price column; pass one of them")
    extra = extra_columns(names, args.rows, args.seed)
    t1 = time.perf_counter()
    write_csv(args.output, cols, users, items, extra)
    t2 = time.perf_counter()
    size = args.output.stat().st_size / 2**20
    print(
        f"{args.output}: {args.rows:,} rows, {size:,.0f} MiB (generate {t1 - t0:.1f}s, write {t2 - t1:.1f}s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
