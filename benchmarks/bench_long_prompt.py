"""Long-prompt encoding cost: `TextConditioner.encode` time against chunk count.

    .venv/bin/python benchmarks/bench_long_prompt.py [--runs 7] [--threads 1]

Prompts of 77, 231, 385 and 539 window tokens (1, 3, 5 and 7 chunks of BOS + 75 + EOS), batch of
one, on the tiny sd15 text encoder and on a CLIP-L-sized encoder (hidden 768, 12 layers, 12 heads,
intermediate 3072) built from config with random weights: the cost is in the shapes, not the
weights. Prints the median of several runs, the time per chunk and the ratio to the 77-token time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from coverforge.config import TextConfig
from coverforge.models.loading import load_model
from coverforge.models.tiny import write_tiny_model
from coverforge.text.chunking import CHUNK_TOKENS, WINDOW
from coverforge.text.conditioning import TextConditioner

CHUNKS = (1, 3, 5, 7)  # 77, 231, 385, 539 window tokens
WORDS = "river stone cloud lamp forest window garden silver morning candle".split()  # one CLIP token each


def prompt_with_chunks(tokenizer, n_chunks: int) -> str:
    text = " ".join(WORDS[i % len(WORDS)] for i in range(n_chunks * CHUNK_TOKENS))
    assert len(tokenizer(text, add_special_tokens=False, verbose=False).input_ids) == n_chunks * CHUNK_TOKENS
    return text


def clip_l_sized(vocab: int, pad_id: int) -> CLIPTextModel:
    config = CLIPTextConfig(vocab_size=vocab, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            max_position_embeddings=77, hidden_act="quick_gelu", pad_token_id=pad_id)
    return CLIPTextModel(config).eval()


def median_time(conditioner: TextConditioner, prompt: str, runs: int) -> float:
    with torch.no_grad():
        conditioner.encode([prompt])  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            cond = conditioner.encode([prompt])
            times.append(time.perf_counter() - start)
    assert cond.hidden.shape[1] == WINDOW * cond.n_chunks
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        parts = load_model(str(write_tiny_model("sd15", f"{tmp}/sd15")))
    tok = parts.tokenizer
    config = TextConfig(max_tokens=max(CHUNKS) * CHUNK_TOKENS)
    encoders = {
        "tiny sd15 (32 wide, 2 layers)": parts.text_encoder.eval(),
        "CLIP-L size (768 wide, 12 layers)": clip_l_sized(len(tok), tok.pad_token_id),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.runs} runs, batch 1")
    print(f"{'encoder':<36}{'tokens':>7}{'chunks':>7}{'median ms':>11}{'ms/chunk':>10}{'ratio':>8}")
    for name, encoder in encoders.items():
        conditioner = TextConditioner("sd15", [tok], [encoder], config)
        base = None
        for n in CHUNKS:
            t = median_time(conditioner, prompt_with_chunks(tok, n), args.runs)
            base = base or t
            print(f"{name:<36}{n * WINDOW:>7}{n:>7}{t * 1e3:>11.2f}{t * 1e3 / n:>10.2f}{t / base:>8.2f}")


if __name__ == "__main__":
    main()
