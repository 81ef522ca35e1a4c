"""Step-Audio 2 mini (stepfun-ai/Step-Audio2): the repository's ``stepaudio2.StepAudio2``.

As the repository's ``examples.py`` does for speech-to-text: a system turn
("You are a helpful assistant."), a human turn with the instruction and the
audio file, an empty assistant turn; ``StepAudio2(model_path)`` loads the
release with ``trust_remote_code=True`` (so ``--trust-remote-code`` is
required here) and stops at ``<|EOT|>``. Greedy unless a seeded draw is asked
(the examples sample; CueLab does not by default).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from wk_common import GenerativeHandler, not_allowed

SYSTEM = "You are a helpful assistant."


class StepAudio2Handler(GenerativeHandler):
    """Step-Audio-2-mini from a local folder."""

    def __init__(self, location: str, options: Dict[str, Any]) -> None:
        super().__init__()
        if not options.get("trust_remote_code"):
            raise not_allowed("Step-Audio 2 runs the release's own code", "trust-remote-code")
        if not os.path.isdir(location):
            raise FileNotFoundError("%s is not a Step-Audio-2-mini folder" % location)
        from stepaudio2 import StepAudio2  # the repository's own inference class

        self.model = StepAudio2(location)
        self.details = {"folder": os.path.basename(os.path.normpath(location))}

    def generate(
        self,
        audio: Any,
        prompt: str,
        max_new_tokens: int,
        sampling: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        path = self.audio_file(audio)
        try:
            messages = [
                {"role": "system", "content": SYSTEM},
                {
                    "role": "human",
                    "content": [{"type": "text", "text": prompt}, {"type": "audio", "audio": path}],
                },
                {"role": "assistant", "content": None},
            ]
            decoding = self.decoding(sampling, max_new_tokens)
            tokens, text, _ = self.model(messages, **decoding)
        finally:
            os.unlink(path)
        finish = "length" if len(tokens) + 1 >= int(max_new_tokens) else "stop"
        return {
            "text": text,
            "finish_reason": finish,
            "tokens": len(tokens),
            "prompt": prompt,
            "decoding": decoding,
        }
