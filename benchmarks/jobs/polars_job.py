"""The polars job of issue 17: the script a user who does not pick seqprep writes.

Reads a MovieLens-style CSV (``userId,movieId,rating,timestamp``) and writes what
``seqprep build`` writes, with the same rules:

* items numbered 1..N by interaction count, descending; equal counts by original id,
  ascending (seqprep's default ``--item-order frequency``); 0 stays free for padding;
* users numbered 0..U-1 by original id, ascending (``--user-order id``);
* each user's interactions in stable time order: sorted by (user, timestamp, input row),
  the input row being a row index column added right after the read;
* ``sequences.parquet``: ``user_idx`` int32, ``user_id``, ``items`` list<int32>,
  ``timestamps`` list<int64>, ``ratings`` list<float32>, one row per user in user order;
  ``items.parquet`` (``item_idx``, ``item_id``, ``count``) and ``users.parquet``
  (``user_idx``, ``user_id``, ``count``), all zstd (polars' default, seqprep's choice).

``--mode eager`` reads with ``pl.read_csv``; ``--mode lazy`` builds one query plan from
``pl.scan_csv`` and runs the three outputs together with ``pl.collect_all`` (the scan is
shared by common-subplan elimination) under polars' default engine. Example::

    python benchmarks/jobs/polars_job.py /tmp/bench/log.csv /tmp/bench/out-polars --mode lazy
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal, TypeVar

import polars as pl

USER, ITEM, RATING, TIME = "userId", "movieId", "rating", "timestamp"
SCHEMA: dict[str, pl.DataType] = {USER: pl.Int64(), ITEM: pl.Int64(), RATING: pl.Float32(), TIME: pl.Int64()}

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def item_vocabulary(log: Frame) -> Frame:
    """``item_idx`` (1..N), ``item_id``, ``count``: most frequent first, ties by id ascending."""
    return (
        log.group_by(ITEM)
        .agg(pl.len().alias("count"))
        .sort(["count", ITEM], descending=[True, False])
        .with_row_index("item_idx", offset=1)
        .select(pl.col("item_idx").cast(pl.Int32), pl.col(ITEM).alias("item_id"), pl.col("count").cast(pl.Int64))
    )


def sequences(log: Frame, items: Frame) -> Frame:
    """One row per user (ids ascending) with the items, timestamps, ratings in stable time order."""
    codes = items.select(pl.col("item_id").alias(ITEM), "item_idx")
    return (
        log.with_row_index("row")
        .join(codes, on=ITEM, how="left")
        .sort([USER, TIME, "row"])
        .group_by(USER, maintain_order=True)
        .agg(items=pl.col("item_idx"), timestamps=pl.col(TIME), ratings=pl.col(RATING))
        .with_row_index("user_idx")
        .select(pl.col("user_idx").cast(pl.Int32), pl.col(USER).alias("user_id"), "items", "timestamps", "ratings")
    )


def user_vocabulary(seqs: Frame) -> Frame:
    """``user_idx``, ``user_id``, ``count`` from the sequences."""
    return seqs.select("user_idx", "user_id", pl.col("items").list.len().cast(pl.Int64).alias("count"))


def run(path: Path, out: Path, mode: Literal["eager", "lazy"]) -> int:
    """Write the three Parquet files of ``path`` into ``out``; return the number of users."""
    out.mkdir(parents=True, exist_ok=True)
    if mode == "eager":
        log = pl.read_csv(path, schema_overrides=SCHEMA)
        items = item_vocabulary(log)
        seqs = sequences(log, items)
        users = user_vocabulary(seqs)
    else:
        lazy_log = pl.scan_csv(path, schema_overrides=SCHEMA)
        lazy_items = item_vocabulary(lazy_log)
        lazy_seqs = sequences(lazy_log, lazy_items)
        seqs, items, users = pl.collect_all([lazy_seqs, lazy_items, user_vocabulary(lazy_seqs)])
    seqs.write_parquet(out / "sequences.parquet")
    items.write_parquet(out / "items.parquet")
    users.write_parquet(out / "users.parquet")
    return seqs.height


def main(argv: list[str] | None = None) -> None:
    """Command line: ``polars_job.py LOG OUT [--mode eager|lazy]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="CSV with header userId,movieId,rating,timestamp")
    p.add_argument("out", type=Path, help="output folder (created; files in it are replaced)")
    p.add_argument("--mode", choices=["eager", "lazy"], default="eager")
    args = p.parse_args(argv)
    print(run(args.path, args.out, args.mode))


if __name__ == "__main__":
    main()
