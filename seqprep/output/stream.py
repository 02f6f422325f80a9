"""``-o -``: the sequences as one stream on stdout, for ``seqprep build log.csv -o - | python train.py``.

There is no output folder, so nothing goes through the atomic folder writer: the build runs to the
end, then the stream is written (a failed build writes nothing to stdout): in one go, or with the
Dask engine part by part in user order (:class:`StreamWriter`; the same bytes).

- ``--to arrow`` (default): an Arrow IPC stream, read with ``pyarrow.ipc.open_stream(sys.stdin.buffer)``.
  Its columns are those of sequences.parquet (``user_idx``, ``user_id``, ``items``, ``timestamps``
  [, ``ratings``][, ``session_ids``][, one list column per feature]), in record batches of
  :data:`USERS_PER_BATCH` users; the schema metadata holds meta.json's content as JSON bytes under
  ``b"seqprep.meta"`` (see :func:`read_meta`).
- ``--to jsonl``: one JSON object per user and line,
  ``{"user_idx":0,"user_id":1,"items":[...],"timestamps":[...],"ratings":[...],"genre":[...]}``: a
  feature's list under its name (``null`` for a missing ``num`` value, a list of token indices per
  interaction for ``tokens``).

Only data goes to stdout; messages go to stderr (the CLI's business).
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import OutputError
from ..kernels.text import join_lists, json_string, lines_bytes, number_text
from ..model import BuildResult
from .files import dump_json, sequences_arrow

__all__ = ["META_KEY", "USERS_PER_BATCH", "StreamWriter", "read_meta", "write_stream"]

META_KEY = b"seqprep.meta"
USERS_PER_BATCH = 8192


def read_meta(schema: pa.Schema) -> dict[str, Any]:
    """meta.json's content from the schema of a ``-o -`` Arrow stream."""
    return json.loads(schema.metadata[META_KEY])


def _stream_meta_of(meta: dict[str, Any], to: str) -> dict[str, Any]:
    meta = dict(meta)
    meta["outputs"] = {"stream": to, "files": {}}
    return meta


def write_stream(result: BuildResult, fh: BinaryIO | None = None) -> dict[str, Any]:
    """Write ``result`` to ``fh`` (default: stdout's binary buffer) as ``config.emit.to``; return the meta."""
    lists = ("items", "timestamps", "ratings", *(f.name for f in result.sequences.features))
    writer = StreamWriter(result.config.emit.to, result.meta, fh, lists)
    writer.add(sequences_arrow(result))
    return writer.close()


class StreamWriter:
    """The ``-o -`` stream written part by part: :meth:`add` the sequences.parquet rows of consecutive
    user ranges in user order (the Dask engine: each output part as it comes), then :meth:`close`.
    Record batches hold :data:`USERS_PER_BATCH` users however the rows arrive, so the stream's bytes
    do not depend on the parts. ``meta`` (complete before the first row: the Arrow schema carries it)."""

    def __init__(
        self, to: str | None, meta: dict[str, Any], fh: BinaryIO | None = None, lists: tuple[str, ...] = ("items", "timestamps", "ratings")
    ) -> None:
        self.to = to or "arrow"
        self.lists = lists  # the list columns of a JSON line (see jsonl_lines)
        self.fh = sys.stdout.buffer if fh is None else fh
        self.meta = _stream_meta_of(meta, self.to)
        self.pending: pa.Table | None = None
        self.writer: Any = None

    def add(self, table: pa.Table) -> None:
        """The next users' rows (as :func:`~seqprep.output.files.sequences_part` gives them)."""
        pending = table if self.pending is None else pa.concat_tables([self.pending, table])
        full = len(pending) - len(pending) % USERS_PER_BATCH
        if full:
            self._write(pending.slice(0, full))
        self.pending = pending.slice(full)

    def close(self) -> dict[str, Any]:
        """Write the last rows and end the stream; -> the meta it carries."""
        if self.pending is not None and (len(self.pending) or self.writer is None):
            self._write(self.pending)
        self.pending = None
        try:
            if self.writer is not None:
                self.writer.close()
            self.fh.flush()
        except BrokenPipeError as e:
            raise _broken() from e
        return self.meta

    def _write(self, table: pa.Table) -> None:
        table = table.combine_chunks()
        try:
            if self.to == "arrow":
                if self.writer is None:
                    schema = table.schema.with_metadata({META_KEY: dump_json(self.meta).encode("utf-8")})
                    self.writer = pa.ipc.new_stream(self.fh, schema)
                for batch in table.to_batches(max_chunksize=USERS_PER_BATCH):
                    self.writer.write_batch(batch)
            else:
                for batch in table.to_batches(max_chunksize=USERS_PER_BATCH):
                    self.fh.write(lines_bytes(jsonl_lines(batch, self.lists)))
        except BrokenPipeError as e:
            raise _broken() from e


def _broken() -> OutputError:
    return OutputError("stdout was closed before the stream ended (broken pipe); let the reader consume the whole stream")


def jsonl_lines(batch: pa.RecordBatch, lists: tuple[str, ...] = ("items", "timestamps", "ratings")) -> pa.Array:
    """One JSON object (and newline) per user of a sequences batch, built column-wise: ``user_idx``,
    ``user_id`` and the list columns ``lists`` that the batch has (lists of lists for token features)."""
    parts: list[Any] = ['{"user_idx":', number_text(batch.column("user_idx"))]
    uid = batch.column("user_id")
    parts += [',"user_id":', json_string(uid) if not pa.types.is_integer(uid.type) else number_text(uid)]
    for name in lists:
        if name not in batch.schema.names:
            continue
        parts += [f",{json_string(pa.array([name]))[0].as_py()}:", _json_list(batch.column(name))]
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


def _json_list(col: pa.Array) -> pa.Array:
    """Each list of ``col`` as JSON text (``[1,2]``; nested lists for token features)."""
    offsets = np.asarray(col.offsets) - np.asarray(col.offsets)[0]
    values = col.flatten()
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        text = _json_list(values)
    else:
        text = number_text(values, json=True)
    return pc.binary_join_element_wise("[", join_lists(offsets, text, ","), "]", "")
