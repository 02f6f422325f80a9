"""seqprep.kernels.arrow: numpy -> pyarrow without numpy.ma gives pyarrow's own arrays, and
sorted_unique is np.unique (properties over dtypes, strides, lengths and values)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seqprep.kernels.arrow import from_numpy, sorted_unique

NUMBER_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float32, np.float64]


@given(
    dtype=st.sampled_from(NUMBER_DTYPES),
    data=st.data(),
    step=st.integers(1, 3),
)
def test_from_numpy_is_pa_array(dtype, data, step):
    base = data.draw(hnp.arrays(dtype, st.integers(0, 40)))  # floats include NaN and infinities
    values = base[::step]  # strided views too
    got = from_numpy(values)
    want = pa.array(values)
    assert got.type == want.type and got.null_count == 0
    assert got.equals(want) or np.array_equal(got.to_numpy(), want.to_numpy(), equal_nan=True)
    assert got.to_numpy().tobytes() == np.ascontiguousarray(values).tobytes()


@pytest.mark.parametrize("dtype", NUMBER_DTYPES)
def test_from_numpy_shares_a_contiguous_arrays_memory(dtype):
    values = np.arange(10).astype(dtype)
    got = from_numpy(values, pa.from_numpy_dtype(dtype))
    values[3] = 7  # zero-copy, as pa.array is for numbers without nulls
    assert got[3].as_py() == 7


def test_from_numpy_hands_anything_else_to_pa_array():
    assert from_numpy(np.array([1, 300]), pa.int32()).to_pylist() == [1, 300]  # a cast
    with pytest.raises(pa.ArrowInvalid):
        from_numpy(np.array([1, 2**40]), pa.int32())  # ... as safe as pa.array's
    assert from_numpy(np.array([True, False])).to_pylist() == [True, False]
    assert from_numpy(np.array(["a", "b"], dtype=object)).to_pylist() == ["a", "b"]


def test_from_numpy_of_a_read_only_memory_map(tmp_path):
    path = tmp_path / "col.i8"
    np.arange(5, dtype=np.int64).tofile(path)
    mapped = np.memmap(path, dtype=np.int64, mode="r", shape=(5,))
    assert from_numpy(mapped).to_pylist() == [0, 1, 2, 3, 4]


@given(hnp.arrays(st.sampled_from([np.int32, np.int64, np.uint16]), st.integers(0, 60), elements=st.integers(-5, 5).map(abs)))
def test_sorted_unique_is_np_unique(values):
    got = sorted_unique(values)
    want = np.unique(values)
    assert got.dtype == want.dtype and got.tolist() == want.tolist()
