"""The pandas job: the same outputs as ``seqprep build`` (and the polars job), in idiomatic pandas.

Reads a MovieLens-style CSV (``userId,movieId,rating,timestamp``) with explicit dtypes and the
default C parser, then:

* ``value_counts`` gives the item counts; items are numbered 1..N by count descending, equal
  counts by original id ascending (seqprep's ``--item-order frequency``);
* users are numbered 0..U-1 by original id ascending (``groupby(sort=True)`` order);
* each user's interactions are put in stable time order by sorting on (user, timestamp, input
  row): the default RangeIndex is the input row, named ``row`` so ``sort_values`` can use it;
* ``groupby(user).agg(list)`` makes the sequences; ``to_parquet`` (pyarrow, default snappy)
  writes ``sequences.parquet`` with seqprep's column types, plus ``items.parquet`` and
  ``users.parquet``.

Example::

    python benchmarks/jobs/pandas_job.py /tmp/bench/log.csv /tmp/bench/out-pandas
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

USER, ITEM, RATING, TIME = "userId", "movieId", "rating", "timestamp"
DTYPES = {USER: "int64", ITEM: "int64", RATING: "float32", TIME: "int64"}
SEQUENCES_SCHEMA = pa.schema(
    [
        ("user_idx", pa.int32()),
        ("user_id", pa.int64()),
        ("items", pa.list_(pa.int32())),
        ("timestamps", pa.list_(pa.int64())),
        ("ratings", pa.list_(pa.float32())),
    ]
)


def item_vocabulary(log: pd.DataFrame) -> pd.DataFrame:
    """``item_idx`` (1..N), ``item_id``, ``count``: most frequent first, ties by id ascending."""
    counts = log[ITEM].value_counts().rename_axis("item_id").reset_index(name="count")
    vocab = counts.sort_values(["count", "item_id"], ascending=[False, True], ignore_index=True)
    vocab.insert(0, "item_idx", np.arange(1, len(vocab) + 1, dtype=np.int32))
    return vocab


def sequences(log: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """One row per user (ids ascending) with the items, timestamps, ratings in stable time order."""
    codes = pd.Series(items["item_idx"].to_numpy(), index=items["item_id"].to_numpy())
    log = log.assign(item_idx=log[ITEM].map(codes)).rename_axis("row")
    ordered = log.sort_values([USER, TIME, "row"])
    seqs = ordered.groupby(USER, sort=True)[["item_idx", TIME, RATING]].agg(list)
    seqs = seqs.rename(columns={"item_idx": "items", TIME: "timestamps", RATING: "ratings"})
    seqs = seqs.rename_axis("user_id").reset_index()
    seqs.insert(0, "user_idx", np.arange(len(seqs), dtype=np.int32))
    return seqs


def run(path: Path, out: Path) -> int:
    """Write the three Parquet files of ``path`` into ``out``; return the number of users."""
    out.mkdir(parents=True, exist_ok=True)
    log = pd.read_csv(path, dtype=DTYPES)
    items = item_vocabulary(log)
    seqs = sequences(log, items)
    seqs.to_parquet(out / "sequences.parquet", index=False, schema=SEQUENCES_SCHEMA)
    items.to_parquet(out / "items.parquet", index=False)
    users = pd.DataFrame({"user_idx": seqs["user_idx"], "user_id": seqs["user_id"], "count": seqs["items"].str.len()})
    users.to_parquet(out / "users.parquet", index=False)
    return len(seqs)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``pandas_job.py LOG OUT``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="CSV with header userId,movieId,rating,timestamp")
    p.add_argument("out", type=Path, help="output folder (created; files in it are replaced)")
    args = p.parse_args(argv)
    print(run(args.path, args.out))


if __name__ == "__main__":
    main()
