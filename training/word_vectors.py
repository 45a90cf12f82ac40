"""Pretrained word vectors for the model's token table: the committed default table, GloVe/word2vec text
files given by path, and the offline builder that produced the default from the WordLlama wheel.

The default table (``training/data/word_vectors.npz``) holds 256-d WordLlama vectors for every VidVRD
object and predicate word plus common synonyms, and an alias list (``bike`` -> ``bicycle``). Provenance and
why not spaCy: ``training/data/PROVENANCE.md``. Rebuild: ``python -m vrgv.training.word_vectors WHEEL_DIR OUT.npz``.
"""
from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from vrgv.errors import ConfigError
from vrgv.vocab import EOS, PAD, SPECIALS, Vocabulary

log = logging.getLogger(__name__)

DEFAULT_TABLE = "data/word_vectors.npz"

# synonym -> vocabulary word (objects and predicate words); each synonym's own vector is kept too
ALIASES: dict[str, str] = {
    "bike": "bicycle", "cycle": "bicycle", "cat": "domestic_cat", "kitten": "domestic_cat",
    "man": "person", "woman": "person", "boy": "person", "girl": "person", "child": "person",
    "kid": "person", "people": "person", "human": "person", "puppy": "dog", "boat": "watercraft",
    "ship": "watercraft", "canoe": "watercraft", "kayak": "watercraft", "plane": "airplane",
    "aeroplane": "airplane", "jet": "airplane", "cow": "cattle", "bull": "cattle", "ox": "cattle",
    "motorbike": "motorcycle", "scooter": "motorcycle", "couch": "sofa", "automobile": "car",
    "truck": "car", "pony": "horse", "panda": "giant_panda", "ape": "monkey", "lamb": "sheep",
    "bunny": "rabbit", "tortoise": "turtle", "gecko": "lizard", "locomotive": "train",
    "under": "beneath", "below": "beneath", "over": "above", "towards": "toward", "beside": "next",
    "near": "next", "in": "inside", "into": "inside", "bigger": "larger", "faster": "faster",
    "walking": "walk", "running": "run", "riding": "ride", "jumping": "jump", "flying": "fly",
    "swimming": "swim", "sitting": "sit", "standing": "stand", "lying": "lie", "moving": "move",
}


@dataclass
class WordVectorTable:
    """Words and their vectors (float32 [K, dim]), plus aliases and where the vectors came from."""

    words: list[str]
    vectors: np.ndarray
    source: str = "unknown"
    aliases: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise ConfigError(
                f"word vector table from {self.source}: vectors shape {list(self.vectors.shape)} does not match "
                f"{len(self.words)} words"
            )
        if not np.all(np.isfinite(self.vectors)):
            raise ConfigError(f"word vector table from {self.source} holds NaN or infinite values")
        self._index = {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def get(self, word: str) -> np.ndarray | None:
        """The vector of ``word``; a multi-word ``a_b`` missing as a whole is the mean of its parts."""
        if word in self._index:
            return self.vectors[self._index[word]]
        parts = word.split("_")
        if len(parts) > 1 and all(p in self._index for p in parts):
            return np.mean([self.vectors[self._index[p]] for p in parts], axis=0)
        return None

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        alias_from = sorted(self.aliases)
        np.savez_compressed(
            path, words=np.array(self.words, dtype=str), vectors=self.vectors,
            alias_from=np.array(alias_from, dtype=str), alias_to=np.array([self.aliases[a] for a in alias_from], dtype=str),
            source=np.array(self.source),
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WordVectorTable":
        """Read a table ``.npz`` (saved by :meth:`save`) or a GloVe/word2vec text file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"word vector file {str(path)!r} does not exist")
        if path.suffix != ".npz":
            return load_text_vectors(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                aliases = dict(zip(data["alias_from"].tolist(), data["alias_to"].tolist())) if "alias_from" in data else {}
                return cls([str(w) for w in data["words"]], data["vectors"], str(data.get("source", path.name)), aliases)
        except (KeyError, ValueError, OSError) as exc:
            raise ConfigError(f"word vector table {str(path)!r} is not a valid table .npz ({exc})") from None


def default_table() -> WordVectorTable:
    """The committed 256-d table built from WordLlama (see PROVENANCE.md)."""
    ref = resources.files("vrgv.training").joinpath(DEFAULT_TABLE)
    with resources.as_file(ref) as path:
        return WordVectorTable.load(path)


def load_text_vectors(path: str | os.PathLike, wanted: set[str] | None = None) -> WordVectorTable:
    """A GloVe (``word v1 v2 ...``) or word2vec text file (same, after a ``count dim`` header line)."""
    path = Path(path)
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if len(parts) < 2:
                continue
            word = parts[0].lower()
            if wanted is not None and word not in wanted:
                continue
            try:
                vec = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise ConfigError(f"word vector file {str(path)!r} line {lineno}: non-numeric values") from None
            if dim is None:
                dim = vec.size
            if vec.size != dim:
                raise ConfigError(f"word vector file {str(path)!r} line {lineno}: {vec.size} values, expected {dim}")
            if word not in words:
                words.append(word)
                rows.append(vec)
    if not rows:
        raise ConfigError(f"word vector file {str(path)!r} holds no usable 'word v1 v2 ...' lines")
    return WordVectorTable(words, np.stack(rows), source=str(path))


def vocabulary_matrix(vocab: Vocabulary, table: WordVectorTable, seed: int = 0) -> np.ndarray:
    """float32 [len(vocab), dim]: each token's vector; pad = 0; bos/eos/unk and missing words are small
    deterministic random vectors (missing words are logged)."""
    rng = np.random.default_rng(seed)
    scale = float(np.std(table.vectors)) or 1.0
    out = np.zeros((len(vocab), table.dim), dtype=np.float32)
    missing = []
    for i, token in enumerate(vocab.tokens):
        if i == PAD:
            continue
        vec = None if token in SPECIALS else table.get(token)
        if vec is None:
            if token not in SPECIALS:
                missing.append(token)
            vec = rng.normal(0.0, scale, table.dim)
        out[i] = vec
    if missing:
        log.warning("word vectors from %s lack %d token(s) %s; they get random vectors", table.source, len(missing), missing)
    assert out[EOS].any()
    return out


# ------------------------------------------------------------------------------------------------
# offline builder (WordLlama l2_supercat 256-d static token table, read without installing wordllama)
# ------------------------------------------------------------------------------------------------
WORDLLAMA_WEIGHTS = "wordllama/weights/l2_supercat_256.safetensors"
WORDLLAMA_TOKENIZER = "wordllama/tokenizers/l2_supercat_tokenizer_config.json"


def bpe_tokenize(text: str, vocab: dict[str, int], ranks: dict[tuple[str, str], int]) -> list[int]:
    """SentencePiece-style BPE of the Llama-2 tokenizer (``▁`` word prefix, lowest-rank merge first)."""
    symbols = list("\u2581" + text.replace(" ", "\u2581"))
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        symbols[i: i + 2] = [symbols[i] + symbols[i + 1]]
    missing = [s for s in symbols if s not in vocab]
    if missing:
        raise ConfigError(f"BPE of {text!r} left symbols {missing} outside the tokenizer vocabulary")
    return [vocab[s] for s in symbols]


def read_wordllama(package_dir: str | os.PathLike, words: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """WordLlama's embedding of each word: the mean of its BPE tokens' rows (how WordLlama pools text);
    ``a_b`` is embedded as the phrase ``a b``."""
    import json

    from safetensors.numpy import load_file

    root = Path(package_dir)
    table = load_file(str(root / WORDLLAMA_WEIGHTS))["embedding.weight"].astype(np.float32)
    tok = json.loads((root / WORDLLAMA_TOKENIZER).read_text(encoding="utf-8"))["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tok["merges"]]
    ranks = {pair: r for r, pair in enumerate(merges)}
    found = {}
    for w in words:
        ids = bpe_tokenize(w.replace("_", " "), tok["vocab"], ranks)
        found[w] = table[ids].mean(axis=0)
    return found, f"WordLlama l2_supercat_256 token table ({table.shape[0]} x {table.shape[1]}), BPE mean pooling"


def build_table(package_dir: str | os.PathLike, vocab: Vocabulary | None = None) -> WordVectorTable:
    """The default table: every vocabulary token (``domestic_cat`` embedded as ``domestic cat``) and alias."""
    vocab = vocab or Vocabulary.default()
    names = list(dict.fromkeys([t for t in vocab.tokens if t not in SPECIALS] + sorted(ALIASES)))
    found, source = read_wordllama(package_dir, names)
    return WordVectorTable(names, np.stack([found[n] for n in names]), source=source, aliases=dict(ALIASES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the committed word-vector table from the unpacked wordllama wheel")
    parser.add_argument("package_dir", help="folder of the unpacked wordllama wheel (holding wordllama/weights)")
    parser.add_argument("out", help="output .npz")
    args = parser.parse_args(argv)
    table = build_table(args.package_dir)
    table.save(args.out)
    print(f"wrote {len(table.words)} words x {table.dim} to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
