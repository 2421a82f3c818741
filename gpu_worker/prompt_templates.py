"""Prompt templates for zero/few-shot elicitation: how a task's examples and answers are written.

A template renders ``instruction``, then each demonstration as ``query`` plus ``answer`` plus its
class's first verbalizer, then the example to classify as ``query`` plus ``answer``, leaving the
LM to continue with a verbalizer. Its ``name`` carries a version and is part of the cache key, so
change the name whenever the wording changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpu_worker.errors import UnknownNameError
from schemas.artifacts import TaskView


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """How one task is put to a causal LM.

    Attributes:
        name: versioned name (part of the cache key).
        instruction: the task statement, written once at the top.
        query: format string with ``{a}`` (and ``{b}`` for pair tasks) for one example.
        answer: the cue after which the LM names the class, e.g. ``"Sentiment:"``.
        verbalizers: per class, continuations that name it (leading space; the first one is used in
            demonstrations, and every one's probability counts when scoring).
        max_chars: each text is cut to this many characters, so prompts stay short and their cue is kept.
    """

    name: str
    instruction: str
    query: str
    answer: str
    verbalizers: tuple[tuple[str, ...], ...]
    max_chars: int = 400

    def example(self, a: str, b: str | None) -> str:
        """One example as the query shows it, texts cut to ``max_chars``."""
        cut = self.max_chars
        return self.query.format(a=a[:cut].strip(), b=(b or "")[:cut].strip())

    def render(self, demos: list[tuple[str, str | None, int]], a: str, b: str | None) -> str:
        """The full prompt: instruction, labelled demonstrations, then the example and the answer cue."""
        shots = "".join(
            f"{self.example(da, db)}\n{self.answer}{self.verbalizers[y][0]}\n\n" for da, db, y in demos
        )
        return f"{self.instruction}\n\n{shots}{self.example(a, b)}\n{self.answer}"


_TEMPLATES: dict[str, PromptTemplate] = {
    "rt": PromptTemplate(
        name="rt-v1",
        instruction="Decide whether the movie review is positive or negative.",
        query="Review: {a}",
        answer="Sentiment:",
        verbalizers=((" negative",), (" positive",)),
    ),
    "roget": PromptTemplate(
        name="roget-v1",
        instruction="Give the topic of the word: animals, plants, disease, food, clothing or music.",
        query="Word: {a}",
        answer="Topic:",
        verbalizers=((" animals",), (" plants",), (" disease",), (" food",), (" clothing",), (" music",)),
    ),
    "code": PromptTemplate(
        name="code-v1",
        instruction="Does the code solve the task? Answer yes or no.",
        query="Task: {a}\nCode:\n{b}",
        answer="Answer:",
        verbalizers=((" no",), (" yes",)),
        max_chars=600,
    ),
}


def generic_template(view: TaskView) -> PromptTemplate:
    """A template for any task from its instruction and label names (verbalizers are the names)."""
    pair = view.kind == "pair"
    return PromptTemplate(
        name="generic-v1",
        instruction=view.instruction or f"Classify the text as one of: {', '.join(view.label_names)}.",
        query="First text: {a}\nSecond text: {b}" if pair else "Text: {a}",
        answer="Answer:",
        verbalizers=tuple((f" {n}",) for n in view.label_names),
    )


def template_for(view: TaskView, name: str | None = None) -> PromptTemplate:
    """The template called ``name``, or the task's own one, or the generic one.

    Raises:
        UnknownNameError: ``name`` is neither a task template nor ``generic``.
    """
    if name == "generic" or (name is None and view.task not in _TEMPLATES):
        return generic_template(view)
    key = view.task if name is None else name
    if key not in _TEMPLATES:
        raise UnknownNameError("prompt template", key, [*_TEMPLATES, "generic"])
    return _TEMPLATES[key]
