"""Flow families, generation: `generate` and `coverforge generate` give the stock pipeline's pixels
(guidance 1, and CFG with a negative prompt), a seed's image ignores its batch-mates, and sizes off
the 16-px grid or samplers other than Euler are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from coverforge.cli.main import main
from coverforge.config import SampleConfig
from coverforge.errors import CoverforgeError
from coverforge.models.loading import load_model
from coverforge.sampling.generate import Generator, generate
from flow_kit import FAMILIES, OTHER_PROMPT, PROMPT, pixels, stock_images, stock_pipeline

NEGATIVE = "blurry, low quality"


def generator(folder) -> Generator:
    return Generator.from_parts(load_model(str(folder)))


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_gives_the_stock_pixels_with_and_without_guidance(flow_models, family):
    gen, pipe = generator(flow_models[family]), stock_pipeline(flow_models[family], family)
    prompts = [PROMPT, OTHER_PROMPT]  # of different lengths: the batch is padded
    ours = {}
    for guidance in (1.0, 4.0):
        s = SampleConfig(steps=3, guidance_scale=guidance, width=32, height=48, negative_prompt=NEGATIVE)
        ours[guidance] = [pixels(im) for im in generate(gen, prompts, [5, 6], s)]
        theirs = [pixels(im) for im in stock_images(pipe, family, prompts, 5, guidance, NEGATIVE, steps=3, width=32, height=48)]
        assert ours[guidance][0].shape == (48, 32, 3)
        for i in range(2):
            assert np.array_equal(ours[guidance][i], theirs[i]), f"guidance {guidance}, image {i}"
    # The comparisons mean something: the two images differ, and guidance changes them.
    assert not np.array_equal(ours[1.0][0], ours[1.0][1])
    assert not np.array_equal(ours[1.0][0], ours[4.0][0])


@pytest.mark.parametrize("guidance", [1.0, 4.0])
@pytest.mark.parametrize("family", FAMILIES)
def test_cli_generate_gives_the_stock_pixels(flow_models, family, guidance, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["generate", "--model", str(flow_models[family]), "--prompt", PROMPT, "--seed", "7", "--steps", "3",
                 "--width", "48", "--height", "32", "--guidance", str(guidance), "--negative", NEGATIVE, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    (png,) = sorted(out.glob("00000-*-seed7.png"))
    (theirs,) = stock_images(stock_pipeline(flow_models[family], family), family, [PROMPT], 7, guidance, NEGATIVE,
                             steps=3, width=48, height=32)
    assert np.array_equal(pixels(png), pixels(theirs))


@pytest.mark.parametrize("family", FAMILIES)
def test_the_image_of_a_seed_does_not_depend_on_its_batch_mates(flow_models, family):
    gen = generator(flow_models[family])
    s = SampleConfig(steps=3, guidance_scale=3.0, width=32, height=32)
    together = generate(gen, [PROMPT, OTHER_PROMPT, PROMPT], [1, 2, 3], s)
    alone = generate(gen, [OTHER_PROMPT], [2], s)[0]
    assert np.array_equal(pixels(together[1]), pixels(alone))
    assert not np.array_equal(pixels(together[0]), pixels(together[2]))  # seeds 1 and 3 of one prompt differ


@pytest.mark.parametrize("family", FAMILIES)
def test_a_size_off_the_16_px_grid_is_refused_in_one_line(flow_models, family, tmp_path, capsys):
    gen = generator(flow_models[family])
    assert gen.size_multiple == 16
    with pytest.raises(CoverforgeError, match="multiples of 16") as e:
        generate(gen, [PROMPT], [0], SampleConfig(steps=2, width=40, height=32))
    assert "\n" not in str(e.value)
    code = main(["generate", "--model", str(flow_models[family]), "--prompt", PROMPT, "--steps", "2", "--width", "32",
                 "--height", "24", "--out", str(tmp_path / "out")])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and errors[0].endswith("must be multiples of 16 for this model (got 32x24)")
    assert not list((tmp_path / "out").glob("*.png"))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_sampler_other_than_euler_is_refused_in_one_line(flow_models, family, tmp_path, capsys):
    gen = generator(flow_models[family])
    with pytest.raises(CoverforgeError, match="sample.sampler = 'dpm\\+\\+2m'.*'euler'") as e:
        generate(gen, [PROMPT], [0], SampleConfig(sampler="dpm++2m", steps=2, width=32, height=32))
    assert "\n" not in str(e.value)
    code = main(["generate", "--model", str(flow_models[family]), "--prompt", PROMPT, "--steps", "2", "--width", "32",
                 "--height", "32", "--sampler", "ddim", "--out", str(tmp_path / "out")])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "'ddim'" in errors[0] and "'euler'" in errors[0]
