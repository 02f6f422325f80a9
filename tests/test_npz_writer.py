"""write_npz: each member holds exactly ``np.save``'s bytes, the zip is readable by numpy, and its
headers do not depend on the Python release (no Zip64 fields for members under 4 GiB: zipfile's
``force_zip64`` output changed in CPython 3.11.4, and NPZ bytes differed between 3.11.2 and 3.11.7)."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seqprep.output.files import NpyChunks, write_npz

DTYPES = st.sampled_from([np.int32, np.int64, np.float32, np.float64, np.bool_, np.uint8])


@st.composite
def members(draw):
    n = draw(st.integers(0, 4))
    out = {}
    for i in range(n):
        dtype = draw(DTYPES)
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=30))
        out[f"m{i}"] = draw(hnp.arrays(dtype, shape))
    return out


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@settings(max_examples=60, deadline=None)
@given(arrays=members(), chunked=st.booleans(), cut=st.integers(1, 7))
def test_members_are_np_save_bytes(arrays, chunked, cut, tmp_path_factory):
    path = tmp_path_factory.mktemp("npz") / "a.npz"
    given_arrays = {}
    for name, arr in arrays.items():
        if chunked:
            flat = arr.reshape(-1)
            given_arrays[name] = NpyChunks(arr.dtype, arr.shape, lambda flat=flat: [flat[a : a + cut] for a in range(0, len(flat), cut)])
        else:
            given_arrays[name] = arr
    write_npz(path, given_arrays)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == [f"{name}.npy" for name in arrays]
        for name, arr in arrays.items():
            assert zf.read(f"{name}.npy") == _npy_bytes(arr)
    with np.load(path, allow_pickle=False) as z:
        for name, arr in arrays.items():
            np.testing.assert_array_equal(z[name], arr)


def test_no_zip64_fields_below_4gib(tmp_path):
    """Every local header says version 2.0 and carries no extra field, every size is a real one:
    what any Python's zipfile writes for a member of known size (not its ``force_zip64`` form)."""
    path = tmp_path / "a.npz"
    write_npz(path, {"items": np.arange(1000, dtype=np.int32), "offsets": np.array([0, 1000], dtype=np.int64)})
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    for info in infos:
        sig, version, _flags, _method, _t, _d, _crc, csize, usize, _n, n_extra = struct.unpack(
            "<IHHHHHIIIHH", raw[info.header_offset : info.header_offset + 30]
        )
        assert sig == 0x04034B50
        assert version == 20
        assert n_extra == 0
        assert csize == usize == info.file_size < 0xFFFFFFFF
    assert b"PK\x06\x06" not in raw  # no Zip64 end of central directory record


def test_a_member_of_the_wrong_length_is_refused(tmp_path):
    with pytest.raises((ValueError, RuntimeError)):
        write_npz(tmp_path / "a.npz", {"x": NpyChunks(np.dtype(np.int32), (5,), lambda: [np.arange(3, dtype=np.int32)])})


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="object arrays"):
        write_npz(tmp_path / "a.npz", {"x": np.array([1, "a"], dtype=object)})
