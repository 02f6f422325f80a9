"""Train a tiny next-item model on seqprep output for a few steps: a complete consumer.

    python examples/train_torch.py OUT                      # a folder written by `seqprep build`
    seqprep build ratings.csv -o - | python examples/train_torch.py -    # the Arrow stream on stdin
    python examples/train_torch.py --build ratings.csv      # build in memory first

The embedding table is sized from meta.json (``num_embeddings`` = N + 1, or N + 2 with an oov item;
row 0 is padding), sequences are left-padded with 0 to ``--max-len`` and the model (embedding -> GRU ->
scores over all items) learns to predict each next item; padding positions are ignored in the loss.
Needs torch (not a seqprep dependency).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch import nn


def load_padded(source: str, build: bool, max_len: int) -> tuple[np.ndarray, dict]:
    """(int64 [U, max_len] left-padded item indices, meta) from a folder, stdin ('-') or a raw log."""
    import seqprep
    from seqprep.kernels import padded

    if build:
        res = seqprep.build(source, None)
        seqs = res.sequences
        return padded(seqs.items.astype(np.int64), seqs.offsets, max_len), res.meta
    if source == "-":
        from pyarrow import ipc

        reader = ipc.open_stream(sys.stdin.buffer)
        meta = json.loads(reader.schema.metadata[b"seqprep.meta"])
        items = reader.read_all()["items"].combine_chunks()
        offsets = np.asarray(items.offsets, dtype=np.int64)
        values = np.asarray(items.values, dtype=np.int64)
        return padded(values, offsets - offsets[0], max_len), meta
    ds = seqprep.load(source)
    return ds.padded(max_len).astype(np.int64), ds.meta


class NextItem(nn.Module):
    def __init__(self, num_embeddings: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(num_embeddings, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, num_embeddings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.emb(x))
        return self.out(h)  # [B, L, num_embeddings]


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="seqprep output folder, - for a `-o -` stream on stdin, or a log with --build")
    ap.add_argument("--build", action="store_true", help="SOURCE is a raw log: build it in memory first")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--dim", type=int, default=32)
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    seqs, meta = load_padded(args.source, args.build, args.max_len + 1)
    model = NextItem(meta["num_embeddings"], args.dim)  # padding_idx=0: row 0 stays zero
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)  # no loss where the target is padding
    data = torch.from_numpy(seqs)
    rng = np.random.default_rng(0)
    loss = torch.tensor(float("nan"))
    for step in range(args.steps):
        batch = data[torch.from_numpy(rng.integers(0, len(data), size=min(args.batch_size, len(data))))]
        x, y = batch[:, :-1], batch[:, 1:]  # predict item t+1 from items ..t
        logits = model(x)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step + 1}/{args.steps} loss {loss.item():.4f}", file=sys.stderr)
    print(
        json.dumps({"steps": args.steps, "final_loss": round(loss.item(), 6), "num_embeddings": meta["num_embeddings"]})
    )
    return loss.item()


if __name__ == "__main__":
    main()
