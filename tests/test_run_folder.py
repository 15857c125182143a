"""The run folder's one owner: training writes what every later stage finds through it."""

from __future__ import annotations

import pytest

from coverforge.errors import CoverforgeError
from coverforge.run_folder import RunFolder, checkpoint_step
from coverforge.training.checkpoint import resolve_checkpoint, save_checkpoint


def test_checkpoints_written_by_training_are_listed_in_step_order(tmp_path):
    run = RunFolder(tmp_path / "run")
    for step in (3, 12, 7):
        save_checkpoint(run.root, step, {}, {"step": step}, "", keep=5)
    (run.checkpoints / "step-00000099").mkdir()  # unfinished: no marker
    (run.checkpoints / ".tmp-step-00000100").mkdir()  # a write in progress
    assert [checkpoint_step(p) for p in run.complete_checkpoints()] == [3, 7, 12]
    assert [checkpoint_step(p) for p in run.checkpoint_folders()] == [3, 7, 12, 99]
    assert run.latest_pointer.read_text() == run.checkpoint(7).name  # the last written, not the highest step
    assert resolve_checkpoint(run.root, "latest") == run.checkpoint(7)


def test_finished_means_config_and_final_weights(tmp_path):
    run = RunFolder(tmp_path)
    assert not run.is_run() and not run.is_finished()
    run.config.write_text("")
    assert run.is_run() and not run.is_finished()
    with pytest.raises(CoverforgeError, match="not a finished run folder.*--resume"):
        run.require_finished()
    run.final_weights("lora").mkdir(parents=True)
    assert run.is_finished() and run.require_finished() is run
    assert run.final_weights("full") == run.final_model and run.final_weights("scratch") == run.final_model


def test_a_folder_that_is_not_a_checkpoint_says_so(tmp_path):
    with pytest.raises(CoverforgeError, match="step-00000400"):
        checkpoint_step(tmp_path / "best")
