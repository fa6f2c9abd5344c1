"""An assistant under test that is an LLM with a system prompt: any OpenAI-compatible chat model.

Many bots worth drilling are exactly this: a model, a system prompt, and a tool to hand the customer to a
person. `LLMAssistant` sends the conversation to the model through `LLMClient` (so it gets botdrill's
concurrency, timeouts, retries, circuit breaker and record/replay), offers it a `transfer_to_human` tool,
and reads a call of that tool as a hand-off: the tool's arguments may name the intent and the slots the
model understood, which then count as what the bot exposed. A plain reply is just words; botdrill's judge
still reads them for a hand-off the model announced without calling the tool.

Configured by a YAML file (`--target llm:CONFIG.yaml`):

    llm:
      base_url: http://127.0.0.1:8000/v1
      model: gemma-3-270m
      api_key_env: OPENAI_API_KEY        # the NAME of the variable; the key itself is never stored
    system_prompt: |
      You are the assistant of a UK retail bank. ...
    handoff_message: "I'm transferring you to a colleague now."

Errors in the file name the file, line and field (`AdapterConfigError`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._adapters import TargetError
from ._http_adapters import read_config
from ._llm import LLMBacked, LLMClient, LLMConfig
from ._types import Message, Reply

TRANSFER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "transfer_to_human",
        "description": "Hand the conversation to a human colleague. Use it when the customer needs a "
        "person: fraud, a lost or stolen card, an account takeover, a bereavement, a customer in crisis, or "
        "when they ask for a person.",
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why a person is needed, in a few words."},
                "intent": {"type": "string", "description": "The customer's request, as a short label."},
                "slots": {
                    "type": "object",
                    "description": "Details collected so far (card digits, amounts, dates...).",
                    "additionalProperties": {"type": "string"},
                },
            },
            "required": ["reason"],
        },
    },
}


class LLMAssistantConfig(BaseModel):
    """An LLM assistant: the model to call, its instructions, and how it hands over."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    llm: LLMConfig
    """The endpoint and model (see `LLMConfig`)."""
    system_prompt: str = Field(min_length=1)
    """The bot's instructions, sent as the first message of every call."""
    handoff_tool: bool = True
    """Offer the `transfer_to_human` tool; a call of it is a hand-off."""
    handoff_message: str = "I'm transferring you to a colleague now."
    """What the customer sees when the model calls the tool without saying anything."""
    name: str | None = None
    """The target's name in the run's records (default: `llm:<model>`)."""


class LLMAssistant(LLMBacked):
    """An OpenAI-compatible chat model behind botdrill's `Assistant` interface (see the module doc).

    Args:
        config: the model, prompt and hand-off settings.
        client: an `LLMClient` to call it through (one is built from `config.llm` when not given; pass one
            made with a store to record or replay).
    """

    def __init__(self, config: LLMAssistantConfig, *, client: LLMClient | None = None) -> None:
        self.config = config
        super().__init__(config.llm, client)
        self.name = config.name or f"llm:{config.llm.model}"

    @classmethod
    def from_file(cls, path: str | Path) -> LLMAssistant:
        """Read a config file; errors name the file, line and field."""
        config, _ = read_config(path, LLMAssistantConfig, what="an LLM target")
        return cls(config)

    async def respond(self, messages: list[Message], *, thread_id: str) -> Reply:
        """The model's answer to the conversation so far, a tool call read as a hand-off."""
        prompt: list[dict[str, Any]] = [{"role": "system", "content": self.config.system_prompt}]
        prompt += [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        tools = (TRANSFER_TOOL,) if self.config.handoff_tool else ()
        result = await self.client.complete(prompt, tools=tools)
        transfer = next((c for c in result.tool_calls if c.name == "transfer_to_human"), None)
        raw = {"tokens": [result.prompt_tokens, result.completion_tokens], "cached": result.cached}
        if result.cost_usd is not None:
            raw["cost_usd"] = result.cost_usd
        if transfer is None:
            return Reply(text=result.text, raw=raw)
        args = _arguments(transfer.arguments)
        slots = args.get("slots")
        intent = args.get("intent")
        return Reply(
            text=result.text or self.config.handoff_message,
            intent=intent if isinstance(intent, str) and intent else None,
            slots={str(k): str(v) for k, v in slots.items()} if isinstance(slots, dict) else None,
            handoff=True,
            raw=raw | {"reason": args.get("reason")},
        )


def _arguments(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as a dict, whether the client parsed them or left JSON text."""
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def load_llm_target(spec: str) -> LLMAssistant:
    """`llm:CONFIG.yaml` to an `LLMAssistant`.

    Raises:
        TargetError: the spec names no file.
        AdapterConfigError: the file is malformed (file, line, field).
    """
    path = spec.removeprefix("llm:")
    if not path:
        raise TargetError("target 'llm:' needs a config file: llm:CONFIG.yaml")
    return LLMAssistant.from_file(path)
