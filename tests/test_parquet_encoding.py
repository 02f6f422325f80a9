"""The Parquet files of a build as other readers see them: pandas, polars and pyarrow read the same
values, and min/max statistics are written for the flat columns only (docs/outputs.md).

The encodings are chosen for speed (seqprep.output.files._parquet_options); this checks that what is
written stays a plain, portable Parquet file and that the statistics a row-group filter can use
(``user_idx``, ``target``) are still there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from seqprep.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "ratings.csv"
SPLIT_FILES = ("sequences", "train", "valid", "test")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("enc") / "out"
    res = CliRunner().invoke(cli, ["build", str(SAMPLE), "-o", str(out), "--split", "loo", "-q"])
    assert res.exit_code == 0, res.output
    return out


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


@pytest.mark.parametrize("name", SPLIT_FILES)
def test_statistics_on_flat_columns_only(built: Path, name: str) -> None:
    f = pq.ParquetFile(built / f"{name}.parquet")
    md, schema = f.metadata, f.schema_arrow
    flat = {n for n in schema.names if not _is_list(schema.field(n).type)}
    assert "user_idx" in flat
    for g in range(md.num_row_groups):
        for c in range(md.num_columns):
            col = md.row_group(g).column(c)
            top = col.path_in_schema.split(".")[0]
            if top in flat:
                assert col.is_stats_set and col.statistics.has_min_max, col.path_in_schema
            else:
                assert not col.is_stats_set, col.path_in_schema
    # a reader can prune by user: the first row group's user_idx statistics bound its users
    uid = md.row_group(0).column(schema.names.index("user_idx")).statistics
    got = f.read_row_group(0, columns=["user_idx"]).column(0).to_numpy()
    assert (uid.min, uid.max) == (int(got.min()), int(got.max()))


@pytest.mark.parametrize("name", SPLIT_FILES)
def test_pandas_reads_the_values_pyarrow_reads(built: Path, name: str) -> None:
    pd = pytest.importorskip("pandas")
    path = built / f"{name}.parquet"
    want = pq.read_table(path)
    df = pd.read_parquet(path)
    assert list(df.columns) == want.schema.names
    assert len(df) == want.num_rows
    for col in want.schema.names:
        ref = want.column(col).to_pylist()
        got = [list(v) if isinstance(v, np.ndarray) else v for v in df[col].tolist()]
        assert [list(map(float, v)) if isinstance(v, list) else v for v in got] == [
            list(map(float, v)) if isinstance(v, list) else v for v in ref
        ], col


@pytest.mark.parametrize("name", SPLIT_FILES)
def test_polars_reads_the_values_pyarrow_reads(built: Path, name: str) -> None:
    pl = pytest.importorskip("polars")
    path = built / f"{name}.parquet"
    want = pq.read_table(path)
    df = pl.read_parquet(path)
    assert df.columns == want.schema.names
    for col in want.schema.names:
        assert df[col].to_list() == want.column(col).to_pylist(), col
