"""Generate sample_data/ratings.csv: a small, self-made MovieLens-layout log.

    python sample_data/make_sample.py            # rewrites sample_data/ratings.csv

Deterministic (fixed seed). Integer ids, header ``userId,movieId,rating,timestamp``, and the edge cases
seqprep must get right: equal timestamps within a user, a repeated user-item pair, a cold item (seen
once), and a user whose rows are not in time order in the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20261127
N_USERS = 120
N_ITEMS = 400


def make_rows(seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=3.0, sigma=0.6, size=N_USERS).astype(int), 5, 120)
    users = np.repeat(np.arange(1, N_USERS + 1), lengths)
    n = len(users)
    pop = 1.0 / np.arange(1, N_ITEMS + 1)  # Zipf-like popularity
    items = rng.choice(np.arange(1, N_ITEMS + 1), size=n, p=pop / pop.sum())
    ratings = rng.integers(1, 11, size=n) * 0.5
    start = rng.integers(1_100_000_000, 1_500_000_000, size=N_USERS)
    gaps = rng.choice([0, 1, 30, 3600, 86400], size=n, p=[0.2, 0.1, 0.3, 0.3, 0.1])
    csum = np.cumsum(gaps)
    ts = np.repeat(start, lengths) + csum - np.repeat(csum[np.cumsum(lengths) - lengths], lengths)
    # within each user rows are listed by movieId (like the real files), not by time
    order = np.lexsort((items, users))
    rows = np.stack([users[order], items[order], ratings[order], ts[order]], axis=1)
    cold = np.array([[1, N_ITEMS + 7, 4.0, ts.max() + 1]])  # an item seen exactly once
    repeat = rows[:1].copy()
    repeat[0, 3] += 86400  # the same user-item pair again, a day later
    return np.concatenate([rows, cold, repeat])


def main() -> None:
    rows = make_rows()
    out = Path(__file__).with_name("ratings.csv")
    np.savetxt(out, rows, fmt=["%d", "%d", "%.1f", "%d"], delimiter=",", header="userId,movieId,rating,timestamp", comments="")
    print(f"wrote {out} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
