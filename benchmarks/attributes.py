"""What an item attribute table costs: reading a MovieLens-shaped ``movies.csv`` of 60k items and joining
its genres onto the item vocabulary, in-process, against the plain build's stages in the same run.

Writes (into ``--data-dir``, default a temporary folder) a log of ``--rows`` interactions over
``--items`` items (every item at least once, the rest Zipf-like) and a ``movies.csv`` with
``movieId,title,genres``: titles quoted with commas and doubled quotes (``"Movie 7, The (1995)"``),
1-5 ``|``-separated genres out of 20 per movie, 2% of the log's items left out and 5% more rows for
items the log lacks. Then, ``--repeat`` times each, the best wall time of:

- ``plain stages``: clean + vocabularies + time sort of the log (what a plain build does in memory);
- ``read table``: :func:`seqprep.steps.attributes.read_attribute_tables` (sniff, parse, type the key);
- ``join + encode``: :func:`seqprep.steps.attributes.attribute_features` (the join on the original
  ids and the genres' token vocabulary);
- ``write``: item_features.parquet + features/genres.parquet;

and checks the result against a pandas computation of the same encoding. Wall and CPU seconds (this
process, every thread) are printed; CPU seconds move less with other jobs on a shared machine. For
reading, never asserted::

    python benchmarks/attributes.py --items 60000 --rows 1000000 --repeat 5   # (PYTHONPATH=. from a checkout)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqprep.config import make_config
from seqprep.io import read_log
from seqprep.model import BuildResult
from seqprep.output.attributes import write_attribute_files
from seqprep.steps.attributes import attribute_features, read_attribute_tables
from seqprep.steps.clean import clean
from seqprep.steps.sort import sequences_from
from seqprep.steps.vocabularies import fit_vocabularies

GENRES = [
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
    "(no genres listed)",
]  # fmt: skip


def generate(folder: Path, rows: int, items: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, 20 * items), size=items, replace=False))  # sparse movie ids
    extra = max(0, rows - items)
    pick = np.minimum((rng.zipf(1.3, extra) - 1), items - 1)
    item = np.concatenate([ids, ids[pick]])
    rng.shuffle(item)
    users = rng.integers(1, max(2, rows // 100), len(item))
    ts = rng.integers(800_000_000, 1_600_000_000, len(item))
    log = folder / "ratings.csv"
    pd.DataFrame({"userId": users, "movieId": item, "rating": 3.5, "timestamp": ts}).to_csv(log, index=False)

    in_table = ids[rng.random(items) >= 0.02]  # 2% of the log's items have no row
    unknown = np.setdiff1d(np.arange(1, 21 * items), ids)[: items // 20]  # 5% rows for items the log lacks
    keys = rng.permutation(np.concatenate([in_table, rng.choice(unknown, len(unknown), replace=False)]))
    n = len(keys)
    counts = rng.integers(1, 6, n)
    genre_idx = rng.integers(0, len(GENRES), counts.sum())
    parts = np.array(GENRES, dtype=object)[genre_idx]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    genres = ["|".join(parts[s : s + c]) for s, c in zip(starts, counts)]
    titles = [f'Movie {k}, The "{k % 97}" ({1900 + k % 120})' for k in keys]
    movies = folder / "movies.csv"
    pd.DataFrame({"movieId": keys, "title": titles, "genres": genres}).to_csv(movies, index=False)
    return log, movies


def best(fn: Callable[[], Any], repeat: int) -> tuple[tuple[float, float], Any]:
    """((best wall s, best CPU s of this process, all threads), the last result)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return (min(walls), min(cpus)), out


def check(movies: Path, items: Any, features: Any) -> None:
    """The genres against pandas: one list per item index (row 0 empty), tokens ranked by item count."""
    df = pd.read_csv(movies, dtype={"genres": str})
    kept = pd.DataFrame({"movieId": items.ids.to_numpy(), "item_idx": np.arange(1, len(items) + 1)})
    joined = kept.merge(df, on="movieId", how="left")
    tokens = joined["genres"].dropna().str.split("|").explode()
    ranked = sorted(tokens.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    index = {v: k + 1 for k, (v, _) in enumerate(ranked)}
    want = [[]] + [[] if not isinstance(g, str) else [index[t] for t in g.split("|")] for g in joined["genres"]]
    f = features[0]
    got = [f.values[a:b].tolist() for a, b in zip(f.offsets[:-1], f.offsets[1:])]
    assert got == want, "item_features genres differ from the pandas computation"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=60_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=None)
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqprep-attr-bench-") as tmp:
        folder = ns.data_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        log_path, movies = generate(folder, ns.rows, ns.items, ns.seed)
        config = make_config([str(log_path)], str(folder / "out"), item_table=str(movies), item_attrs=("genres:tokens:|",))
        log = read_log(config.inputs, config.read)

        def plain() -> Any:
            inter, _ = clean(log, config)
            users, items, uidx, iidx = fit_vocabularies(inter, log, config)
            return users, items, sequences_from(uidx, iidx, inter.time, inter.rating, users.counts)

        t_plain, (users, items, seqs) = best(plain, ns.repeat)
        t_read, tables = best(lambda: read_attribute_tables(config), ns.repeat)
        t_join, (features, meta) = best(lambda: attribute_features(tables, config, users, items), ns.repeat)
        result = BuildResult(config=config, users=users, items=items, sequences=seqs, meta={}, attributes=features)
        out = folder / "out"
        out.mkdir(exist_ok=True)
        t_write, _ = best(lambda: write_attribute_files(result, out), ns.repeat)
        check(movies, items, features)
        table = meta["attribute_tables"]["item"]
        print(
            f"log: {log.num_rows:,} rows, {len(items):,} items; movies.csv: {table['rows']:,} rows "
            f"({movies.stat().st_size / 2**20:.1f} MiB), {table['items_without_row']:,} items without a row, "
            f"{table['rows_ignored']:,} rows ignored; genres: {meta['features']['genres']['values']} values"
        )
        both = (t_read[0] + t_join[0], t_read[1] + t_join[1])
        rows = [
            ("plain stages (clean+vocab+sort)", t_plain),
            ("read table", t_read),
            ("join + encode", t_join),
            ("read + join", both),
            ("write item_features + vocabulary", t_write),
        ]
        print(f"{'':<36} {'wall':>8}    {'x plain':>7}  {'CPU':>8}")
        for name, (wall, cpu) in rows:
            print(f"{name:<36} {wall:7.3f} s  {wall / t_plain[0]:6.2f}x  {cpu:7.3f} s")


if __name__ == "__main__":
    main()
