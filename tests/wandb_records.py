"""Read an offline W&B run file (run-*.wandb) without a server, to check what a job logged.

The file is a LevelDB-style log of protobuf ``Record`` messages: a 7-byte header, then 32 KiB
blocks of chunks (crc32 4 bytes, length 2 bytes, type 1 byte, payload).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

HEADER = 7
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pending, pos = [], b"", HEADER
    while pos + 7 <= len(data):
        left_in_block = BLOCK - (pos % BLOCK)
        if left_in_block < 7:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == FULL:
            pending = payload
        elif kind == FIRST:
            pending = payload
            continue
        elif kind == MIDDLE:
            pending += payload
            continue
        elif kind == LAST:
            pending += payload
        record = pb.Record()
        record.ParseFromString(pending)
        out.append(record)
        pending = b""
    return out


def offline_run(path: Path) -> dict[str, Any]:
    """Summary of one offline run folder: id, name, group, tags, config, history keys, summary."""
    files = list(Path(path).glob("run-*.wandb"))
    assert len(files) == 1, f"expected one run-*.wandb in {path}, found {files}"
    info: dict[str, Any] = {"config": {}, "history_keys": set(), "summary": {}, "exit": None, "artifacts": []}
    for record in records(files[0]):
        which = record.WhichOneof("record_type")
        if which == "run":
            run = record.run
            info.update(
                id=run.run_id,
                name=run.display_name,
                group=run.run_group,
                tags=list(run.tags),
                job_type=run.job_type,
            )
            for item in run.config.update:
                info["config"][item.key] = json.loads(item.value_json)
        elif which == "config":
            for item in record.config.update:
                info["config"][item.key] = json.loads(item.value_json)
        elif which == "history":
            info["history_keys"].update(item.key or "/".join(item.nested_key) for item in record.history.item)
        elif which == "summary":
            for item in record.summary.update:
                info["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif which == "artifact":
            info["artifacts"].append((record.artifact.type, record.artifact.name))
        elif which == "exit":
            info["exit"] = record.exit.exit_code
    return info
