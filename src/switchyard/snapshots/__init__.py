"""Vector-index snapshots through S3: publish, replicate between regions, restore behind a gate.

A snapshot is an index generation's manifest (``dialog/store.py``: segments, deleted
documents, every file's path, size and sha256) wrapped with the snapshot's own generation,
source region and creation time. Its files travel content-addressed, so a file already in a
bucket is never uploaded again and a generation that changed a little uploads little.

Bucket layout (each region's bucket holds the same keys)::

    blobs/sha256/<hex>               every segment file, keyed by its digest
    generations/0000000007.json      snapshot manifests, created once (If-None-Match)
    latest                           {"generation": 7, ...}, moved by compare-and-set (If-Match)
    regions/<region>/active.json     the generation a region's runtime serves (kept by retention)

Order of writes: files, then the manifest, then ``latest``. A reader that follows ``latest``
therefore always finds a complete snapshot; a publish cut short leaves only blobs, which the
next publish reuses.
"""
