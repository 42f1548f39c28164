"""BM25 over the live rows of a generation's segments (Lucene's variant, as bm25s computes it).

Segments store raw term counts; the weights depend on every live row (document frequencies,
average length), so they are computed here once per generation: a sparse matrix whose column for
a term holds that term's weight in every row. A query's scores are the sum of its terms' columns.

    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    w(t, r)  = idf(t) * tf / (tf + k1 * (1 - b + b * len(r) / avg_len))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse

from switchyard.dialog.segments import Segment

K1 = 1.5
B = 0.75


class KeywordScorer:
    def __init__(self, segments: Sequence[tuple[Segment, Sequence[int]]]) -> None:
        """``segments``: each segment with its dead rows, in row order of the generation."""
        vocab: dict[str, int] = {}
        rows: list[npt.NDArray[np.int64]] = []
        cols: list[npt.NDArray[np.int64]] = []
        counts: list[npt.NDArray[np.int32]] = []
        offset = 0
        for seg, dead_rows in segments:
            terms = seg.terms
            to_global = np.asarray(
                [vocab.setdefault(t, len(vocab)) for t in terms.vocabulary], dtype=np.int64
            )
            row_of = np.repeat(np.arange(terms.rows, dtype=np.int64), np.diff(terms.indptr))
            keep = np.ones(len(row_of), dtype=bool)
            if len(dead_rows):
                keep = ~np.isin(row_of, np.asarray(dead_rows, dtype=np.int64))
            rows.append(row_of[keep] + offset)
            cols.append(to_global[terms.indices[keep]] if len(to_global) else terms.indices[keep])
            counts.append(terms.counts[keep])
            offset += terms.rows
        self.vocabulary = vocab
        self.rows = offset
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        tf = (np.concatenate(counts) if counts else np.zeros(0, np.int32)).astype(np.float32)
        live = offset - sum(len(dead) for _, dead in segments)
        length = np.bincount(r, weights=tf, minlength=offset).astype(np.float32)
        avg_length = float(length.sum()) / live if live else 1.0
        df = np.bincount(c, minlength=len(vocab)).astype(np.float32)
        idf = np.log1p((live - df + 0.5) / (df + 0.5))
        weight = idf[c] * tf / (tf + K1 * (1 - B + B * length[r] / max(avg_length, 1e-9)))
        self._weights = sparse.csc_matrix(
            (weight.astype(np.float32), (r, c)), shape=(offset, len(vocab))
        )

    def search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` best rows for ``terms`` (rows scoring zero are left out)."""
        columns = [self.vocabulary[t] for t in terms if t in self.vocabulary]
        if not columns or self.rows == 0:
            return []
        scores = np.asarray(self._weights[:, columns].sum(axis=1)).ravel()
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(r), float(scores[r])) for r in top if scores[r] > 0]
