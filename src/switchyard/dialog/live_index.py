"""The live index of a runtime: the generation serving searches, and how it is replaced."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from switchyard.dialog.embedding import Embedder
from switchyard.dialog.index import SearchIndex, with_documents
from switchyard.dialog.model import Document
from switchyard.dialog.store import IndexStore

# Generations kept on disk besides the current one's segments (older ones are pruned).
KEEP_LOCAL_GENERATIONS = 3


class LiveIndex:
    """The index serving searches. Readers take ``current`` (an immutable value) without a
    lock; one writer at a time builds the next generation and swaps it in."""

    def __init__(self, index: SearchIndex, store: IndexStore | None) -> None:
        self._current = index
        self._store = store
        self.write_lock = threading.Lock()

    @property
    def current(self) -> SearchIndex:
        return self._current

    @property
    def store(self) -> IndexStore | None:
        return self._store

    def activate(self, index: SearchIndex) -> None:
        """Persist ``index`` (when a store is configured) and make it the live one."""
        if self._store is not None:
            self._store.save(index)
            self._store.prune(KEEP_LOCAL_GENERATIONS)
        self._current = index

    def install(self, index: SearchIndex, manifest: Path) -> None:
        """Make live a generation already written to the store (a restored snapshot)."""
        if self._store is None:
            raise RuntimeError("no index store to install a saved generation from")
        self._store.make_current(manifest)
        self._current = index
        self._store.prune(KEEP_LOCAL_GENERATIONS)


def reconcile(index: SearchIndex, desired: Sequence[Document], embedder: Embedder) -> SearchIndex:
    """``index`` brought in line with ``desired`` documents (added or changed ones indexed).

    Documents in the index but not desired stay: nothing is removed implicitly.
    """
    changed = [
        d
        for d in desired
        if d.doc_id not in index.documents or index.documents[d.doc_id].sha256 != d.sha256
    ]
    return with_documents(index, changed, embedder) if changed else index
