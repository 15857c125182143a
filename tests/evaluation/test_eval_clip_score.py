import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.functional.multimodal import clip_score as tm_clip_score
from transformers import CLIPImageProcessorPil, CLIPProcessor

from coverforge.evaluation.clip_score import WINDOW, clip_score, load_clip, pad_to_square, prompt_windows
from coverforge.models.tokenizer import build_clip_tokenizer


class PooledFeatures(torch.nn.Module):
    """torchmetrics 1.9 expects tensors from get_*_features; transformers 5 returns model outputs."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def get_image_features(self, pixel_values):
        return self.model.get_image_features(pixel_values=pixel_values).pooler_output

    def get_text_features(self, input_ids, attention_mask):
        return self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output


@pytest.fixture(scope="module")
def clip_parts(clip_factory):
    model = clip_factory(seed=1)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=build_clip_tokenizer(),
    )
    return model, processor


def square_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for _ in range(n)]


def test_matches_torchmetrics_on_short_prompts(clip_parts):
    model, processor = clip_parts
    images = square_images(6)
    prompts = ["a dragon over a castle", "red roses", "a dark alley at night, rain", "space", "a map", "two lovers on a beach"]
    ours = clip_score(images, prompts, model, processor)
    wrapped = PooledFeatures(model)
    reference = []
    for image, prompt in zip(images, prompts):
        tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1)
        reference.append(tm_clip_score(tensor, prompt, lambda: (wrapped, processor)).item())
    np.testing.assert_allclose(ours["per_image"], reference, rtol=1e-5, atol=1e-4)
    assert ours["clip_score"] == pytest.approx(float(np.mean(reference)), rel=1e-5, abs=1e-4)
    # short prompts fit one window: the chunked figure is the same number
    assert ours["per_image_chunked"] == pytest.approx(ours["per_image"])
    assert all(s >= 0 for s in ours["per_image"]) and sum(s > 0 for s in reference) >= 3  # not all clamped


def test_long_prompt_windows_keep_the_end_token():
    tok = build_clip_tokenizer()
    prompt = " ".join(f"word{i}" for i in range(200))
    windows = prompt_windows(tok, prompt)
    n_tokens = len(tok(prompt, add_special_tokens=False, verbose=False)["input_ids"])
    assert len(windows) == -(-n_tokens // WINDOW) > 1
    assert all(w[0] == tok.bos_token_id and w[-1] == tok.eos_token_id and len(w) <= 77 for w in windows)
    assert len(windows[0]) == 77
    # torchmetrics cuts the full tokenization at 77, which ends on an ordinary token instead
    cut = tok(prompt, verbose=False)["input_ids"][:77]
    assert cut[-1] != tok.eos_token_id and windows[0][:-1] == cut[:-1]
    assert prompt_windows(tok, "") == [[tok.bos_token_id, tok.eos_token_id]]


def test_long_prompt_scores_differ_by_window_and_are_deterministic(clip_parts):
    model, processor = clip_parts
    images = square_images(2, seed=3)
    prompts = [" ".join(["fantasy castle"] * 10 + ["noir detective city"] * 40), "short"]
    a = clip_score(images, prompts, model, processor)
    b = clip_score(images, prompts, model, processor)
    assert a == b
    assert a["n_chunks"][0] > 1 and a["n_chunks"][1] == 1
    assert a["per_image_chunked"][1] == pytest.approx(a["per_image"][1])


def test_portrait_is_padded_with_border_colour_not_cropped():
    arr = np.zeros((60, 30, 3), dtype=np.uint8)
    arr[:] = (200, 10, 10)
    arr[25:35, 10:20] = (0, 255, 0)  # content away from the border
    arr[0, :] = (0, 0, 200)  # the title band at the top must survive
    square = pad_to_square(Image.fromarray(arr))
    out = np.asarray(square)
    assert square.size == (60, 60)
    np.testing.assert_array_equal(out[:, 15:45], arr)  # whole cover kept, centred
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).mean(axis=0).round()
    np.testing.assert_array_equal(out[30, 0], border.astype(np.uint8))


def test_load_clip_folder_without_tokenizer(tiny_clip_dir):
    bundle = load_clip(tiny_clip_dir)
    assert len(bundle.tokenizer) == 49408
    scores = clip_score(square_images(2), ["a", "b"], bundle.model, bundle)
    assert scores["n"] == 2 and bundle.identity.startswith("clip:32px:")
