"""The word vocabulary: which objects and predicates a model knows, and relation -> token ids.

Token layout (shared by training, export and the runtime): id 0 ``<pad>``, 1 ``<bos>``, 2 ``<eos>``,
3 ``<unk>``, then every object name (``domestic_cat`` is one token) and every predicate word. A query is
``[subject, p1, p2, p3, object]`` (predicate words padded with 0) so the exported graph needs no strings.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from vrgv.errors import RelationError
from vrgv.relation import Relation, suggest

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
MAX_PREDICATE_WORDS = 3
QUERY_LEN = 2 + MAX_PREDICATE_WORDS


@dataclass
class Vocabulary:
    """Known objects and predicates, plus the token table derived from them."""

    objects: list[str]
    predicates: list[str]
    aliases: dict[str, str] = field(default_factory=dict)
    static_predicate_words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.objects = [o.lower() for o in self.objects]
        self.predicates = [p.lower() for p in self.predicates]
        too_long = [p for p in self.predicates if len(p.split("_")) > MAX_PREDICATE_WORDS]
        if too_long:
            raise RelationError(f"predicates with more than {MAX_PREDICATE_WORDS} words are unsupported: {too_long}")
        words: list[str] = []
        for name in self.objects:
            if name not in words:
                words.append(name)
        for pred in self.predicates:
            for w in pred.split("_"):
                if w not in words:
                    words.append(w)
        self.tokens: list[str] = [*SPECIALS, *words]
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self._objects = set(self.objects)
        self._predicates = set(self.predicates)

    # construction -------------------------------------------------------------------------------
    @classmethod
    def default(cls) -> "Vocabulary":
        """The ImageNet-VidVRD vocabulary shipped with vrgv (35 objects, 132 predicates)."""
        data = json.loads(resources.files("vrgv").joinpath("data/vocabulary.json").read_text())
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        return cls(
            objects=list(data["objects"]),
            predicates=list(data["predicates"]),
            aliases=dict(data.get("aliases", {})),
            static_predicate_words=list(data.get("static_predicate_words", [])),
        )

    def to_dict(self) -> dict:
        return {
            "objects": self.objects,
            "predicates": self.predicates,
            "aliases": self.aliases,
            "static_predicate_words": self.static_predicate_words,
            "tokens": self.tokens,
        }

    def __len__(self) -> int:
        return len(self.tokens)

    # validation ---------------------------------------------------------------------------------
    def canonical(self, relation: "str | Relation") -> Relation:
        """Parse, apply aliases (``bike`` -> ``bicycle``) and check every word; raise RelationError."""
        rel = Relation.parse(relation)
        subject = self.aliases.get(rel.subject, rel.subject)
        obj = self.aliases.get(rel.object, rel.object)
        predicate = self.aliases.get(rel.predicate, rel.predicate)
        rel = Relation(subject, predicate, obj)
        self.check(rel)
        return rel

    def check(self, rel: Relation) -> None:
        """Raise RelationError naming the first unknown word and the closest known ones."""
        for role, word, known in (
            ("subject", rel.subject, self.objects),
            ("predicate", rel.predicate, self.predicates),
            ("object", rel.object, self.objects),
        ):
            if word not in (self._predicates if role == "predicate" else self._objects):
                close = suggest(word, list(known) + list(self.aliases))
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise RelationError(
                    f"relation '{rel}': unknown {role} {word!r}{hint} "
                    f"(the model knows {len(known)} {'predicates' if role == 'predicate' else 'objects'}; "
                    f"list them with `vrgv ground --list-vocabulary`)"
                )

    def is_static(self, predicate: str) -> bool:
        """Appendix C split: a predicate is static if its first word is a static word.

        ``stand_left`` is static, ``walk_left`` dynamic; this rule gives the paper's 2343 static / 2492
        dynamic test instances of ImageNet-VidVRD (a word anywhere in the predicate would give 4008).
        """
        return predicate.lower().split("_")[0] in self.static_predicate_words

    # encoding -----------------------------------------------------------------------------------
    def token_id(self, word: str) -> int:
        return self._index.get(word, UNK)

    def encode_query(self, relations: Sequence["str | Relation"] | "str | Relation") -> np.ndarray:
        """int64 [R, 5]: ``[subject, p1, p2, p3, object]`` token ids, predicate words padded with 0."""
        if isinstance(relations, (str, Relation)):
            relations = [relations]
        out = np.zeros((len(relations), QUERY_LEN), dtype=np.int64)
        for r, relation in enumerate(relations):
            rel = self.canonical(relation)
            out[r, 0] = self._index[rel.subject]
            for k, w in enumerate(rel.predicate_words):
                out[r, 1 + k] = self._index[w]
            out[r, QUERY_LEN - 1] = self._index[rel.object]
        return out

    def encode_words(self, relation: "str | Relation") -> list[int]:
        """Decoder target: ``[subject, predicate words..., object, <eos>]`` token ids."""
        rel = self.canonical(relation)
        return [self._index[w] for w in rel.words] + [EOS]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids if i not in (PAD, BOS, EOS)]
