import json

import pytest

from coverforge.cli.main import main
from coverforge.data.layout import load_records
from coverforge.data.prepare import PrepareOptions, prepare_folder
from data_builders import save_cover


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    """A tiny random BLIP captioner with its processor, saved like a real one."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    d = tmp_path_factory.mktemp("blip")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"word{i}" for i in range(59)]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                              tokenizer=BertTokenizer(str(d / "vocab.txt")))
    text = dict(vocab_size=64, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                bos_token_id=2, sep_token_id=3, pad_token_id=0, max_position_embeddings=64)
    vision = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32, patch_size=8)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32))
    model.save_pretrained(d / "model")
    processor.save_pretrained(d / "model")
    return d / "model"


def test_caption_fills_missing_captions_and_keeps_layout(tiny_blip, tmp_path):
    src = tmp_path / "imgs"
    for i in range(3):
        save_cover(src / f"{i}.jpg", seed=i)
    (src / "0.txt").write_text("a hand-written caption")
    out = tmp_path / "ds"
    prepare_folder(src, PrepareOptions(out=out, min_size=200, val_fraction=0.0))
    assert main(["caption", str(out), "--model", str(tiny_blip), "--prefix", "Book cover. "]) == 0
    rows = load_records(out)  # would raise if any text were still missing or a file_name broken
    by_file = {r["file_name"]: r for r in rows}
    assert len(rows) == 3
    assert by_file["000000-0.jpg"]["text"] == "a hand-written caption"  # existing captions are kept
    for name in ("000001-1.jpg", "000002-2.jpg"):
        assert by_file[name]["text"].startswith("Book cover. word")
    meta = [json.loads(line) for line in (out / "train" / "metadata.jsonl").read_text().splitlines()]
    assert all("path" not in r for r in meta)
