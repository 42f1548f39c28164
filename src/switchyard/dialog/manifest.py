"""Index manifests parsed as hostile input: the one place their JSON becomes values.

A manifest comes from a bucket (a snapshot: whoever could write there wrote it) or from the
store's own disk; either may be damaged or crafted. Its segment ids become folder names and
its digests object keys, so every field is checked before anything uses it:

- segment ids and sha256 digests: exactly 64 lowercase hex digits (a segment id is the
  sha256 of its content, ``segments.segment_id``);
- file paths: exactly ``segments/<segment id>/<one of SEGMENT_FILES>``, each segment listing
  each of its files once; so never absolute, never ``..``, no backslash, no NUL;
- model id, chunker version, document ids, region names, timestamps: a strict alphabet and a
  bounded length;
- numbers: JSON integers (not booleans, not floats) within bounds; lists of bounded length;
- no unknown or repeated keys, no NaN, at most ``MAX_MANIFEST_BYTES``.

A refusal is a ``ManifestError`` naming the source, the field (as a JSON path:
``manifest.index.segments[0].files[3].sha256``) and what is wrong, never the value itself.
``Fields`` is the reader the snapshot objects (``snapshots/layout.py``) are parsed with too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from switchyard.dialog.documents import check_doc_id
from switchyard.dialog.index import IndexInfo
from switchyard.errors import FatalError

FORMAT_VERSION = 2
SEGMENT_FILES = ("documents.json", "chunks.jsonl", "vectors.npy", "hnsw.faiss", "terms.npz")

MAX_MANIFEST_BYTES = 64 << 20
MAX_GENERATION = 10**10 - 1  # snapshot keys spell a generation in ten digits
MAX_COUNT = 10**9  # documents, chunks
MAX_FILE_BYTES = 1 << 40
MAX_SEGMENTS = 1024  # a generation keeps about MAX_SEGMENTS (8) by merging; this is a bound
MAX_DELETED = 1_000_000  # deleted document ids listed for one segment
MAX_PATH_LENGTH = 255

HEX64 = re.compile(r"[0-9a-f]{64}")
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,199}")
CHUNKER_VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
REGION_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")  # as topology.yaml's region names
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
PATH_PART = re.compile(r"[A-Za-z0-9._-]{1,128}")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_]{1,40}")

INDEX_KEYS = ("format", *IndexInfo.__dataclass_fields__, "segments")


class IndexMismatchError(FatalError):
    """The index on disk was built by another model or chunker, or its files are damaged."""

    code = "index_mismatch"


class ManifestError(IndexMismatchError):
    """A manifest (or a bucket's pointer or marker) refused while parsing: ``field`` is the
    JSON path of what is wrong; the message never repeats the value (it is hostile)."""

    code = "manifest_invalid"

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"{where}: {field}: {problem}")
        self.where = where
        self.field = field
        self.problem = problem


class UnsafePathError(FatalError):
    """A path in the index store would lead outside it (``..``, an absolute part, or a
    symbolic link planted on the way); refused before anything is read, written or deleted.
    ``field`` names the manifest field that led there, when one did."""

    code = "index_path_unsafe"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the store root: segments/<id>/<name>
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    id: str
    deleted: tuple[str, ...]  # document ids, sorted
    files: tuple[FileEntry, ...]


@dataclass(frozen=True, slots=True)
class IndexManifest:
    info: IndexInfo
    segments: tuple[SegmentEntry, ...]

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return tuple(f for s in self.segments for f in s.files)

    @property
    def content_digest(self) -> str:
        """Identity of what the index holds (not when it was built): equal digests, equal
        search results."""
        body = {
            "model_id": self.info.model_id,
            "chunker_version": self.info.chunker_version,
            "segments": [[s.id, list(s.deleted)] for s in self.segments],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            **asdict(self.info),
            "segments": [
                {"id": s.id, "deleted": list(s.deleted), "files": [asdict(f) for f in s.files]}
                for s in self.segments
            ],
        }

    @staticmethod
    def from_json(raw: object, where: str, field: str = "manifest") -> IndexManifest:
        """Parse a manifest's JSON value; ``ManifestError`` names ``where`` and the field."""
        return parse_index_manifest(Fields(raw, where, field, INDEX_KEYS))

    def check_compatible(self, *, model_id: str, chunker_version: str) -> None:
        if self.info.model_id != model_id:
            raise IndexMismatchError(
                f"index built with {self.info.model_id!r}, this runtime uses {model_id!r}"
            )
        if self.info.chunker_version != chunker_version:
            raise IndexMismatchError(
                f"index chunked by {self.info.chunker_version!r}, "
                f"this runtime uses {chunker_version!r}"
            )


def segment_path(segment_id: str, name: str) -> str:
    return f"segments/{segment_id}/{name}"


def path_problem(path: str) -> str | None:
    """What makes ``path`` unfit to name a file under a folder (None: nothing): it must be
    relative, of ``/``-separated parts of letters, digits, ``.``, ``_``, ``-``, and no part
    ``.`` or ``..``."""
    if not path:
        return "is empty"
    if len(path) > MAX_PATH_LENGTH:
        return f"is longer than {MAX_PATH_LENGTH} characters"
    if "\x00" in path:
        return "contains a NUL character"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is an absolute path"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' part"
    if not all(PATH_PART.fullmatch(part) for part in parts):
        return "must be parts of letters, digits, '.', '_' or '-' separated by '/'"
    return None


# -- reading untrusted JSON -------------------------------------------------------------------


def parse_json(data: bytes, where: str, root: str) -> object:
    """The JSON value in ``data``: at most ``MAX_MANIFEST_BYTES``, no repeated keys, no NaN."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(where, root, f"{len(data)} bytes; at most {MAX_MANIFEST_BYTES}")
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ManifestError(where, root, "is not valid JSON") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("repeated key")
    return out


def _no_constant(_: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


class Fields:
    """One JSON object from an untrusted source, read field by field. Unknown keys are refused
    at once; a missing or malformed field raises ``ManifestError`` naming its path."""

    def __init__(self, raw: object, where: str, path: str, keys: Collection[str]) -> None:
        if not isinstance(raw, dict):
            raise ManifestError(where, path, "must be a JSON object")
        unknown = sorted(k for k in raw if k not in keys)
        if unknown:
            # A key is named only when it is a plain one: it is hostile input too.
            named = f" {unknown[0]!r}" if _PLAIN_KEY.fullmatch(unknown[0]) else ""
            raise ManifestError(where, path, f"has an unknown field{named}")
        self._raw: dict[str, object] = raw
        self.where = where
        self.path = path

    def at(self, name: str) -> str:
        return f"{self.path}.{name}"

    def refuse(self, name: str, problem: str) -> ManifestError:
        return ManifestError(self.where, self.at(name), problem)

    def value(self, name: str) -> object:
        if name not in self._raw:
            raise self.refuse(name, "is missing")
        return self._raw[name]

    def integer(self, name: str, *, low: int, high: int) -> int:
        return check_integer(self.value(name), self.where, self.at(name), low=low, high=high)

    def text(self, name: str, pattern: re.Pattern[str], what: str) -> str:
        return check_text(self.value(name), self.where, self.at(name), pattern, what)

    def timestamp(self, name: str) -> datetime:
        return check_timestamp(self.value(name), self.where, self.at(name))

    def items(self, name: str, *, most: int) -> Iterator[tuple[str, object]]:
        """Each element of the list at ``name`` with its path (``name[3]``)."""
        raw = self.value(name)
        if not isinstance(raw, list):
            raise self.refuse(name, "must be a JSON list")
        if len(raw) > most:
            raise self.refuse(name, f"lists {len(raw)} items; at most {most}")
        for i, item in enumerate(raw):
            yield f"{self.at(name)}[{i}]", item

    def object(self, name: str, keys: Collection[str]) -> Fields:
        return Fields(self.value(name), self.where, self.at(name), keys)


def check_integer(raw: object, where: str, field: str, *, low: int, high: int) -> int:
    if type(raw) is not int:  # bool is an int to Python, not to a manifest
        raise ManifestError(where, field, "must be a JSON integer")
    if not low <= raw <= high:
        raise ManifestError(where, field, f"must be between {low} and {high}")
    return raw


def check_text(raw: object, where: str, field: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(raw, str):
        raise ManifestError(where, field, "must be a JSON string")
    if not pattern.fullmatch(raw):
        raise ManifestError(where, field, f"must be {what}")
    return raw


def check_timestamp(raw: object, where: str, field: str) -> datetime:
    text = check_text(raw, where, field, RFC3339, "an RFC 3339 time with its offset")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ManifestError(where, field, "is not a valid date and time") from None


# -- the index manifest -----------------------------------------------------------------------


def parse_index_manifest(m: Fields) -> IndexManifest:
    """The manifest in ``m``, every field checked (see the module's docstring)."""
    version = m.integer("format", low=0, high=MAX_COUNT)
    if version != FORMAT_VERSION:
        raise m.refuse("format", f"manifest format {version}, expected {FORMAT_VERSION}")
    info = IndexInfo(
        generation=m.integer("generation", low=0, high=MAX_GENERATION),
        model_id=m.text("model_id", MODEL_ID, "a model id (letters, digits, ._:/+-)"),
        chunker_version=m.text("chunker_version", CHUNKER_VERSION_PATTERN, "a chunker version"),
        documents=m.integer("documents", low=0, high=MAX_COUNT),
        chunks=m.integer("chunks", low=0, high=MAX_COUNT),
        built_at=m.text("built_at", RFC3339, "an RFC 3339 time with its offset"),
    )
    check_timestamp(info.built_at, m.where, m.at("built_at"))
    segments: list[SegmentEntry] = []
    seen: dict[str, str] = {}
    for path, raw in m.items("segments", most=MAX_SEGMENTS):
        segment = _segment(Fields(raw, m.where, path, ("id", "deleted", "files")))
        if segment.id in seen:
            raise ManifestError(m.where, f"{path}.id", f"repeats {seen[segment.id]}.id")
        seen[segment.id] = path
        segments.append(segment)
    return IndexManifest(info, tuple(segments))


def _segment(s: Fields) -> SegmentEntry:
    segment_id = s.text("id", HEX64, "a segment id (64 lowercase hex digits)")
    deleted = []
    for path, raw in s.items("deleted", most=MAX_DELETED):
        if not isinstance(raw, str):
            raise ManifestError(s.where, path, "must be a JSON string")
        try:
            deleted.append(check_doc_id(raw))
        except ValueError as exc:
            raise ManifestError(s.where, path, str(exc)) from None
    files: dict[str, FileEntry] = {}
    for path, raw in s.items("files", most=len(SEGMENT_FILES)):
        f = _file(Fields(raw, s.where, path, ("path", "size", "sha256")), segment_id)
        if f.name in files:
            raise ManifestError(s.where, f"{path}.path", "lists a file of the segment twice")
        files[f.name] = f
    lacking = [n for n in SEGMENT_FILES if n not in files]
    if lacking:
        raise s.refuse("files", f"lacks {', '.join(lacking)}")
    return SegmentEntry(segment_id, tuple(sorted(deleted)), tuple(files.values()))


def _file(f: Fields, segment_id: str) -> FileEntry:
    path = f.value("path")
    if not isinstance(path, str):
        raise f.refuse("path", "must be a JSON string")
    problem = path_problem(path)
    if problem is not None:
        raise f.refuse("path", problem)
    if path not in {segment_path(segment_id, n) for n in SEGMENT_FILES}:
        raise f.refuse(
            "path", f"must be segments/<this segment's id>/<one of {', '.join(SEGMENT_FILES)}>"
        )
    return FileEntry(
        path,
        f.integer("size", low=0, high=MAX_FILE_BYTES),
        f.text("sha256", HEX64, "a sha256 digest (64 lowercase hex digits)"),
    )
