"""Conversations as text: the Anthropic HH transcript format, and message lists rendered into it.

Anthropic's HH-RLHF data (Bai et al. 2022, "Training a Helpful and Harmless
Assistant with RLHF", appendix on the data format) stores each conversation
as one string ``"\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nHuman: ...\\n\\nAssistant: ..."``.
Every source here is brought to that one text format so that all prompts and
completions look alike to a model and to an encoder:

- a transcript splits at its **last** ``"\\n\\nAssistant:"``: the prompt is
  everything up to and including that tag, the completion the final reply
  after it (with its leading space), so ``prompt + completion`` is the
  transcript exactly;
- a message list (``[{"role", "content"}, ...]``, the chat format of the hub's
  UltraFeedback, TRL and OpenAssistant data) renders each message as
  ``"\\n\\n<Role>: <content>"`` (Human for user / prompter / human, Assistant,
  System), and a prompt ends with ``"\\n\\nAssistant:"`` so that the
  completion ``" <reply>"`` continues it in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datalign.data.preference.records import BadRowError, require_text

ASSISTANT_TAG = "\n\nAssistant:"
HUMAN_TAG = "\n\nHuman:"
ROLE_NAMES: dict[str, str] = {
    "user": "Human",
    "human": "Human",
    "prompter": "Human",
    "assistant": "Assistant",
    "system": "System",
}


def check_messages(value: Any, field: str) -> list[tuple[str, str]]:
    """A message list as ``[(role, content), ...]``.

    ``value`` must be a non-empty list of mappings, each with a ``role`` in
    ROLE_NAMES and a non-blank string ``content``. Raises BadRowError naming the
    element (``chosen[1].content``) otherwise.
    """
    if value is None:
        raise BadRowError(field, "missing")
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise BadRowError(field, "not a message list", f"got {type(value).__name__}")
    if not value:
        raise BadRowError(field, "empty")
    messages = []
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, Mapping):
            raise BadRowError(where, "not a message", f"got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLE_NAMES:
            raise BadRowError(f"{where}.role", "unknown role", f"got {role!r}, expected one of {sorted(ROLE_NAMES)}")
        messages.append((role, require_text(message.get("content"), f"{where}.content")))
    return messages


def render_turns(messages: Sequence[tuple[str, str]]) -> str:
    """``"".join("\\n\\n<Role>: <content>")`` over the messages (roles mapped by ROLE_NAMES)."""
    return "".join(f"\n\n{ROLE_NAMES[role]}: {content}" for role, content in messages)


def render_prompt(messages: Sequence[tuple[str, str]]) -> str:
    """The prompt text of a conversation: its turns, then ``"\\n\\nAssistant:"``."""
    return render_turns(messages) + ASSISTANT_TAG


def render_completion(messages: Sequence[tuple[str, str]], field: str) -> str:
    """The completion text that continues :func:`render_prompt`: ``" <first reply>"``
    then any further turns rendered as in the prompt.

    Raises BadRowError when the first message is not the assistant's.
    """
    if not messages:
        raise BadRowError(field, "empty")
    role, content = messages[0]
    if role != "assistant":
        raise BadRowError(f"{field}[0].role", "completion not by the assistant", f"got {role!r}")
    return " " + content + render_turns(messages[1:])


def split_transcript(text: Any, field: str) -> tuple[str, str]:
    """``(prompt, completion)`` of an HH transcript, split after its last ``"\\n\\nAssistant:"``.

    Raises BadRowError when the text is not a string, has no Assistant turn, its
    final reply is blank, or a Human turn follows the final reply (then the
    text does not end with the assistant's answer).
    """
    text = require_text(text, field)
    cut = text.rfind(ASSISTANT_TAG)
    if cut < 0:
        raise BadRowError(field, "no Assistant turn")
    prompt, completion = text[: cut + len(ASSISTANT_TAG)], text[cut + len(ASSISTANT_TAG) :]
    if not completion.strip():
        raise BadRowError(field, "empty final reply")
    if HUMAN_TAG in completion:
        raise BadRowError(field, "ends with a Human turn")
    return prompt, completion
