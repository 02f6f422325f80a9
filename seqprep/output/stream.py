"""``-o -``: the sequences as one stream on stdout, for ``seqprep build log.csv -o - | python train.py``.

There is no output folder, so nothing goes through the atomic folder writer: the build runs to the
end in memory, then the stream is written in one go (a failed build writes nothing to stdout).

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

__all__ = ["META_KEY", "USERS_PER_BATCH", "read_meta", "write_stream"]

META_KEY = b"seqprep.meta"
USERS_PER_BATCH = 8192


def read_meta(schema: pa.Schema) -> dict[str, Any]:
    """meta.json's content from the schema of a ``-o -`` Arrow stream."""
    return json.loads(schema.metadata[META_KEY])


def _stream_meta(result: BuildResult, to: str) -> dict[str, Any]:
    meta = dict(result.meta)
    meta["outputs"] = {"stream": to, "files": {}}
    return meta


def write_stream(result: BuildResult, fh: BinaryIO | None = None) -> dict[str, Any]:
    """Write ``result`` to ``fh`` (default: stdout's binary buffer) as ``config.emit.to``; return the meta."""
    to = result.config.emit.to or "arrow"
    fh = sys.stdout.buffer if fh is None else fh
    meta = _stream_meta(result, to)
    table = sequences_arrow(result)
    try:
        if to == "arrow":
            table = table.replace_schema_metadata({META_KEY: dump_json(meta).encode("utf-8")})
            with pa.ipc.new_stream(fh, table.schema) as writer:
                for batch in table.to_batches(max_chunksize=USERS_PER_BATCH):
                    writer.write_batch(batch)
        else:
            lists = ("items", "timestamps", "ratings", *(f.name for f in result.sequences.features))
            for batch in table.to_batches(max_chunksize=USERS_PER_BATCH):
                fh.write(lines_bytes(jsonl_lines(batch, lists)))
        fh.flush()
    except BrokenPipeError as e:
        msg = "stdout was closed before the stream ended (broken pipe); let the reader consume the whole stream"
        raise OutputError(msg) from e
    return meta


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
