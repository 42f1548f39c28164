"""Request and response bodies of the dialog runtime's HTTP API (pydantic, validated)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchyard.dialog.documents import SUPPORTED_MEDIA_TYPES, check_doc_id

MAX_MESSAGE_CHARS = 2000
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: uuid.UUID | None = None
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class CitationOut(BaseModel):
    document: str
    chunk_id: str
    score: float
    start: int
    end: int
    text: str


class ChatResponse(BaseModel):
    session_id: uuid.UUID
    answer: str
    kind: str
    confidence: float
    citations: list[CitationOut]
    intent: str
    region: str
    epoch: int
    turn: int
    index_generation: int


class TurnOut(BaseModel):
    seq: int
    role: str
    text: str
    kind: str
    intent: str | None
    confidence: float | None
    citations: list[CitationOut]
    region: str
    epoch: int
    created_at: str


class SessionOut(BaseModel):
    session_id: uuid.UUID
    turns: int
    region: str
    epoch: int
    created_at: str
    updated_at: str
    dialog: dict[str, object]
    history: list[TurnOut]


class DocumentIn(BaseModel):
    """A document to add. ``content`` is the text itself (``encoding: utf-8``) or, for PDFs,
    base64 (``encoding: base64``)."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str = Field(min_length=1, max_length=200)
    media_type: str
    content: str = Field(min_length=1)
    encoding: Literal["utf-8", "base64"] = "utf-8"

    @field_validator("doc_id")
    @classmethod
    def _doc_id(cls, value: str) -> str:
        return check_doc_id(value)

    @field_validator("media_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        if value not in SUPPORTED_MEDIA_TYPES:
            raise ValueError(f"unsupported; one of {', '.join(sorted(SUPPORTED_MEDIA_TYPES))}")
        return value


class DocumentOut(BaseModel):
    doc_id: str
    changed: bool
    chunks: int
    index_generation: int
    epoch: int


class CanaryOut(BaseModel):
    query: str
    answer: str
    kind: str
    confidence: float
    cited_documents: list[str]
    retrieved_documents: list[str]
    region: str
    role: str
    epoch: int
    index_generation: int
    timings_ms: dict[str, float]


class ReadyOut(BaseModel):
    ready: bool
    region: str
    role: str | None
    epoch: int | None
    index_generation: int | None
    checks: dict[str, str]


class RestoreIn(BaseModel):
    """Which snapshot generation to restore; none: the newest in the region's bucket."""

    model_config = ConfigDict(extra="forbid")

    generation: int | None = Field(default=None, ge=1)


class RestoreOut(BaseModel):
    generation: int
    source_region: str
    index_generation: int
    documents: int
    chunks: int
    downloaded_files: int
    downloaded_bytes: int
    gate: str  # the gate's sentence: what the golden questions scored
