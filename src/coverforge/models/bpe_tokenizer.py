"""A small byte-level BPE tokenizer in the Qwen2 layout, trained in code for the tiny LLM-encoder models.

Qwen-Image (Qwen2.5-VL) and Z-Image (Qwen3) read prompts through Qwen2's tokenizer: byte-level BPE
behind Qwen2's regex pre-tokenizer, with `<|im_start|>`-style special tokens and a chat template. The
real 151k-token vocabulary is on the hub, out of reach offline, so we train a few hundred merges on a
fixed corpus with the `tokenizers` library and wrap them as `Qwen2Tokenizer` (`Qwen2TokenizerFast` is
the same class in transformers 5). The corpus holds the pipelines' own template words, so the
Qwen-Image system prompt encodes to exactly the 34 tokens its pipeline drops, as with the real
tokenizer. Same corpus and size, byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer

# In the real order: the ids after the BPE vocabulary follow Qwen2.5's added tokens, then Qwen3's <think> pair.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
THINK_TOKENS = ("<think>", "</think>")  # plain added tokens in Qwen3, not special ones

# Qwen3's chat template reduced to what text-to-image pipelines use: role turns, the generation prompt,
# and the empty thinking block that `enable_thinking=False` asks for. Z-Image calls it with
# add_generation_prompt=True, enable_thinking=True.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)

# What the pipelines wrap around a prompt (QwenImagePipeline.prompt_template_encode's system turn and
# the chat roles), weighted so that each of their words becomes one token.
_TEMPLATE_TEXT = (
    "system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, "
    "spatial relationships of the objects and background:\nuser\nassistant\n"
)
_TEMPLATE_WEIGHT = 40

# Book-prompt prose (the prepare stage's template shape: short fields first, then the blurb).
_PROSE = """\
Book cover. Title: "The Salt Road". Author: Mara Ellison. Genres: Fantasy, Adventure, Young Adult.
A girl walks the old salt road across the desert to find the father who never came home.
Book cover. Title: "Glass Harbour". Author: Tomas Verne. Genres: Mystery, Thriller, Crime.
In a harbour town of glass and fog, a detective follows a letter written by a woman who died ten years ago.
Book cover. Title: "A Season of Wolves". Author: Ines Halloran. Genres: Historical Fiction, Romance.
The winter of the great storm, two families, one farm and a secret that the snow will not keep.
Book cover. Title: "Orbit of Ash". Author: Kenji Morrow. Genres: Science Fiction, Space Opera.
The last ship leaves a dying star; its captain must choose which of her crew will wake at the end.
Book cover. Title: "The Quiet House". Author: Delia Crane. Genres: Horror, Gothic, Paranormal.
Something in the walls remembers every family that lived here, and it is hungry for one more.
Illustrated cover art, bold typography, a dark blue sky with golden stars, mountains in the distance,
a red sun over the sea, a forest path at night, soft light, painted texture, clean layout, centred title,
the author's name at the bottom, a small figure in the foreground, warm colours, cold colours, high contrast.
She opened the door and the light of the city fell across the floor; he said nothing, and they waited.
Chapter one begins in the spring, when the river rises and the village prepares for the long journey north.
Love, war, family, friendship, magic, murder, memory, history, power, loss, hope, fear, courage, truth.
"""


def training_corpus() -> list[str]:
    """The fixed lines the merges are learned from."""
    return [_TEMPLATE_TEXT] * _TEMPLATE_WEIGHT + _PROSE.splitlines() * 4


def _train_bpe(vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    # Qwen2's own normaliser and pre-tokenizer, taken from an empty Qwen2Tokenizer, so the learned merges
    # split text exactly as the wrapper will.
    reference = Qwen2Tokenizer().backend_tokenizer
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = reference.normalizer
    bpe.pre_tokenizer = reference.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(training_corpus(), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    return dict(model["vocab"]), [tuple(m) for m in model["merges"]]


def build_qwen_tokenizer(vocab_size: int = 640, max_length: int = 131072) -> Qwen2Tokenizer:
    """A Qwen2-style tokenizer: `vocab_size` BPE tokens, then the special tokens in Qwen's order.

    The BPE part stops early if the corpus runs out of pairs to merge; the special tokens follow it.
    """
    vocab, merges = _train_bpe(vocab_size)
    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=max_length,
        errors="replace",
        clean_up_tokenization_spaces=False,
    )
    # The constructor already added <|endoftext|> as the first id past the vocabulary.
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS[1:]], special_tokens=True)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    tok.eos_token = "<|im_end|>"  # as in the instruct tokenizers both pipelines ship
    tok.chat_template = CHAT_TEMPLATE
    return tok


def save_qwen_tokenizer(tokenizer: Qwen2Tokenizer, folder: Path) -> None:
    """tokenizer.json and its config, plus vocab.json / merges.txt for loaders that read those."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1]))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = "\n".join(" ".join(m) if isinstance(m, list) else m for m in model["merges"])
    (folder / "merges.txt").write_text(f"#version: 0.2\n{merges}\n", encoding="utf-8")
