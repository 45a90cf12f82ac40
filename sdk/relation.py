"""``Relation``: a ``subject-predicate-object`` query such as ``person-ride-bicycle``.

Objects are single vocabulary entries (``domestic_cat``); predicates are phrases whose words are joined by
``_`` (``stand_next_to``). Words compare lower-case; unknown words get the closest known ones suggested.
"""
from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from vrgv.errors import RelationError

_EXAMPLE = "person-ride-bicycle"


def _normalize_word(word: str) -> str:
    word = unicodedata.normalize("NFKC", word).strip().lower()
    return "_".join(part for part in word.replace(" ", "_").split("_") if part)


@dataclass(frozen=True)
class Relation:
    """A parsed relation triplet; ``str(relation)`` gives back the canonical ``s-p-o`` form."""

    subject: str
    predicate: str
    object: str

    def __post_init__(self) -> None:
        for field, value in (("subject", self.subject), ("predicate", self.predicate), ("object", self.object)):
            if not isinstance(value, str):
                raise RelationError(f"relation {field} must be a string, got {type(value).__name__}")
            norm = _normalize_word(value)
            if not norm:
                raise RelationError(f"relation {field} is empty; write the relation like '{_EXAMPLE}'")
            if "-" in norm:
                raise RelationError(f"relation {field} {value!r} contains '-', which separates the three parts")
            if not all(ch.isalnum() or ch == "_" for ch in norm) or not norm.isascii():
                raise RelationError(
                    f"relation {field} {value!r} has characters other than ASCII letters, digits and '_'"
                )
            object.__setattr__(self, field, norm)

    @classmethod
    def parse(cls, text: "str | Relation", vocabulary: "object | None" = None) -> "Relation":
        """Parse ``"subject-predicate-object"``; with a vocabulary, check every word is known to it."""
        if isinstance(text, Relation):
            rel = text
        else:
            if not isinstance(text, str):
                raise RelationError(f"relation must be a string like '{_EXAMPLE}', got {type(text).__name__}")
            stripped = unicodedata.normalize("NFKC", text).strip()
            if not stripped:
                raise RelationError(f"relation is empty; write it like '{_EXAMPLE}'")
            parts = [p.strip() for p in stripped.split("-")]
            if len(parts) != 3:
                raise RelationError(
                    f"relation {text!r} has {len(parts)} part(s) separated by '-'; expected exactly 3 "
                    f"(subject-predicate-object, e.g. '{_EXAMPLE}'; join multi-word predicates with '_')"
                )
            rel = cls(*parts)
        if vocabulary is not None:
            vocabulary.check(rel)  # type: ignore[attr-defined]
        return rel

    @property
    def predicate_words(self) -> list[str]:
        """The predicate's words: ``stand_next_to`` -> ``["stand", "next", "to"]``."""
        return self.predicate.split("_")

    @property
    def words(self) -> list[str]:
        """Words the model reconstructs: subject, predicate words, object."""
        return [self.subject, *self.predicate_words, self.object]

    def __str__(self) -> str:
        return f"{self.subject}-{self.predicate}-{self.object}"

    def to_dict(self) -> dict:
        return {"subject": self.subject, "predicate": self.predicate, "object": self.object}

    @classmethod
    def from_dict(cls, data: dict) -> "Relation":
        return cls(data["subject"], data["predicate"], data["object"])


def suggest(word: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Closest known words to ``word`` (difflib ratio), best first."""
    return difflib.get_close_matches(word, list(known), n=n, cutoff=0.5)
