"""Crafted snapshot manifests, written as an attacker who can write the bucket would write
them (the JSON body of a good manifest, changed)."""

from __future__ import annotations

import copy
from typing import Any

Body = dict[str, Any]


def rename_segment(body: Body, number: int, segment_id: str) -> None:
    """Segment ``number`` renamed, its files' paths following (so they agree, as the old
    parser required)."""
    segment = body["index"]["segments"][number]
    segment["id"] = segment_id
    for f in segment["files"]:
        f["path"] = f"segments/{segment_id}/{f['path'].rsplit('/', 1)[1]}"


def climbing_through_staging(good: Body, generation: int, ups: int, target: str) -> Body:
    """Two segments: a well-formed one the standby lacks (its staging folder is made first),
    then one whose id climbs out through that folder to ``target``, ``ups`` levels above the
    store's root. Unchecked, emptying the second's "staging folder" empties ``target``."""
    body = copy.deepcopy(good)
    body["generation"] = generation
    first = copy.deepcopy(body["index"]["segments"][0])
    body["index"]["segments"] = [first, copy.deepcopy(first)]
    fresh = "e" * 64  # well-formed, and in no store
    rename_segment(body, 0, fresh)
    # <root>/staging/<fresh>/.. is <root>/staging, one more .. is <root>
    rename_segment(body, 1, "/".join([fresh, "..", "..", *[".."] * ups, target]))
    return body
