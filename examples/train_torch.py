"""Train a tiny next-item model on seqprep output for a few steps: a complete consumer.

    python examples/train_torch.py OUT                      # a folder written by `seqprep build`
    seqprep build ratings.csv -o - | python examples/train_torch.py -    # the Arrow stream on stdin
    python examples/train_torch.py --build ratings.csv      # build in memory first
    python examples/train_torch.py OUT --features           # + one embedding per cat feature (SASRec-F)

The embedding table is sized from meta.json (``num_embeddings`` = N + 1, or N + 2 with an oov item;
row 0 is padding), sequences are left-padded with 0 to ``--max-len`` and the model (embedding -> GRU ->
scores over all items) learns to predict each next item; padding positions are ignored in the loss.

``--features`` adds one embedding table per categorical feature of the build (``--feature COL:cat``,
``--time-feature hour``, ...), each sized from meta.json ``features.<name>.num_embeddings`` with
``padding_idx`` 0, and sums it into the item embedding at every position (the SASRec-F pattern:
the input of position t is item_t + genre_t + hour_t ...); the targets stay items. ``--features
genre,hour`` picks some; with ``--build`` the names are the log's columns to build them from.
Needs torch (not a seqprep dependency).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch import nn


def cat_features(meta: dict, wanted: list[str] | None) -> list[str]:
    """The categorical features to embed: ``wanted`` (checked against meta.json), or all of them."""
    # the features aligned with the items (not the item/user attribute tables' columns)
    kinds = {name: f["kind"] for name, f in (meta.get("features") or {}).items() if f.get("source") not in ("item", "user")}
    if wanted is None:
        return sorted(name for name, kind in kinds.items() if kind == "cat")
    for name in wanted:
        if kinds.get(name) != "cat":
            have = ", ".join(sorted(n for n, k in kinds.items() if k == "cat")) or "none"
            raise SystemExit(f"--features {name}: not a cat feature of this build (its cat features: {have})")
    return wanted


def load_padded(
    source: str, build: bool, max_len: int, features: list[str] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """(int64 [U, max_len] left-padded item indices, name -> int64 [U, max_len] feature indices aligned
    with them, meta) from a folder, stdin ('-') or a raw log. ``features`` None: no features; []: every
    cat feature of the build."""
    import seqprep
    from seqprep.kernels import padded

    if build:
        res = seqprep.build(source, None, features=tuple(f"{name}:cat" for name in features or ()))
        seqs, meta = res.sequences, res.meta
        names = cat_features(meta, features or None) if features is not None else []
        feats = {f.name: padded(f.values.astype(np.int64), seqs.offsets, max_len) for f in seqs.features if f.name in names}
        return padded(seqs.items.astype(np.int64), seqs.offsets, max_len), feats, meta
    if source == "-":
        from pyarrow import ipc

        reader = ipc.open_stream(sys.stdin.buffer)
        meta = json.loads(reader.schema.metadata[b"seqprep.meta"])
        table = reader.read_all()
        names = cat_features(meta, features or None) if features is not None else []

        def lists(column: str) -> np.ndarray:
            col = table[column].combine_chunks()
            offsets = np.asarray(col.offsets, dtype=np.int64)
            values = np.asarray(col.values, dtype=np.int64)[offsets[0] : offsets[-1]]
            return padded(values, offsets - offsets[0], max_len)

        return lists("items"), {name: lists(name) for name in names}, meta
    ds = seqprep.load(source)
    names = cat_features(ds.meta, features or None) if features is not None else []
    feats = {name: ds.padded_feature(name, max_len).astype(np.int64) for name in names}
    return ds.padded(max_len).astype(np.int64), feats, ds.meta


class NextItem(nn.Module):
    """Item embedding (+ one embedding per categorical feature, summed: SASRec-F) -> GRU -> item scores."""

    def __init__(self, num_embeddings: int, dim: int, feature_sizes: dict[str, int] | None = None) -> None:
        super().__init__()
        self.emb = nn.Embedding(num_embeddings, dim, padding_idx=0)
        self.names = list(feature_sizes or {})
        # a list, not a ModuleDict: feature names such as "style.Color" are no attribute names
        self.feature_emb = nn.ModuleList(nn.Embedding(n, dim, padding_idx=0) for n in (feature_sizes or {}).values())
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, num_embeddings)

    def forward(self, x: torch.Tensor, feats: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        h = self.emb(x)
        for name, emb in zip(self.names, self.feature_emb):
            h = h + emb(feats[name])  # row 0 (padding, missing) stays zero
        h, _ = self.gru(h)
        return self.out(h)  # [B, L, num_embeddings]


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="seqprep output folder, - for a `-o -` stream on stdin, or a log with --build")
    ap.add_argument("--build", action="store_true", help="SOURCE is a raw log: build it in memory first")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument(
        "--features",
        nargs="?",
        const="",
        default=None,
        metavar="NAMES",
        help="add one embedding per cat feature (all, or the comma-separated NAMES), summed into the item embedding",
    )
    args = ap.parse_args(argv)
    wanted = None if args.features is None else [n for n in args.features.split(",") if n]
    if args.build and wanted == []:
        raise SystemExit("--build --features needs the log's columns to build features from, e.g. --features genre")

    torch.manual_seed(0)
    seqs, feats, meta = load_padded(args.source, args.build, args.max_len + 1, wanted)
    sizes = {name: meta["features"][name]["num_embeddings"] for name in feats}  # each table sized from meta alone
    model = NextItem(meta["num_embeddings"], args.dim, sizes)  # padding_idx=0: row 0 stays zero
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)  # no loss where the target is padding
    data = torch.from_numpy(seqs)
    fdata = {name: torch.from_numpy(m) for name, m in feats.items()}
    rng = np.random.default_rng(0)
    loss = torch.tensor(float("nan"))
    for step in range(args.steps):
        rows = torch.from_numpy(rng.integers(0, len(data), size=min(args.batch_size, len(data))))
        batch = data[rows]
        x, y = batch[:, :-1], batch[:, 1:]  # predict item t+1 from items ..t
        logits = model(x, {name: m[rows][:, :-1] for name, m in fdata.items()})  # the inputs' own features
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step + 1}/{args.steps} loss {loss.item():.4f}", file=sys.stderr)
    print(
        json.dumps(
            {
                "steps": args.steps,
                "final_loss": round(loss.item(), 6),
                "num_embeddings": meta["num_embeddings"],
                "features": sizes,
            }
        )
    )
    return loss.item()


if __name__ == "__main__":
    main()
