"""``python -m trainer`` end to end, and its answers to bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.cli import discover, main

REPO = Path(__file__).resolve().parents[2]
TINY_ARGS = ["--base", "tiny", "--rank", "4", "--resolution", "32x32", "--frames", "5", "--trigger", "sks"]


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_trains_then_resumes_to_more_steps(tmp_path: Path, clips_dir: Path) -> None:
    out = tmp_path / "out"

    first = _run(clips_dir, out, *TINY_ARGS, "--steps", "3", "--checkpoint-every", "2")

    assert first.returncode == 0, first.stderr
    assert "adapter:" in first.stdout
    assert "3/3" in first.stderr  # the tqdm bar
    for name in ("adapter.safetensors", "adapter_config.json", "training_record.json"):
        assert (out / "adapter" / name).is_file()
    record = json.loads((out / "adapter" / "training_record.json").read_text())
    assert record["steps"] == 3
    assert {a["key"] for a in record["assets"]} == {"pan.mp4", "still.png", "walk.mp4"}
    assert any(a["caption"] == "a person walking through rain" for a in record["assets"])

    again = _run(clips_dir, out, *TINY_ARGS, "--steps", "5", "--resume")

    assert again.returncode == 0, again.stderr
    assert json.loads((out / "adapter" / "training_record.json").read_text())["steps"] == 5


def test_cli_bad_input_exits_non_zero_with_one_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    result = _run(empty, tmp_path / "out", *TINY_ARGS)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no clips or stills in")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "6"], "frames must be 1 + a multiple of 4"),
        (["--resolution", "30x32"], "multiples of 16"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--base", "/no/such/base"], "neither a built-in base"),
        (["--resume"], "holds no checkpoint"),
    ],
)
def test_cli_rejects_bad_settings(
    tmp_path: Path, clips_dir: Path, capsys, args: list[str], message: str
) -> None:
    code = main([str(clips_dir), str(tmp_path / "out"), *TINY_ARGS, *args])

    assert code == 1
    assert message in capsys.readouterr().err


def test_cli_needs_a_trigger_word_or_captions(tmp_path: Path, clips_dir: Path, capsys) -> None:
    code = main(
        [str(clips_dir), str(tmp_path / "out"), "--resolution", "32x32", "--frames", "5", "--steps", "1"]
    )

    assert code == 1
    assert "has no caption and no trigger word" in capsys.readouterr().err


def test_cli_refuses_to_mix_runs_in_one_output(tmp_path: Path, clips_dir: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main([str(clips_dir), str(out), *TINY_ARGS, "--steps", "1"]) == 0

    assert main([str(clips_dir), str(out), *TINY_ARGS, "--steps", "2"]) == 1
    assert "already holds checkpoints" in capsys.readouterr().err


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), str(tmp_path), "--resolution", "big"])
    assert exit_info.value.code == 2


def test_clips_inside_the_output_folder_are_not_footage(tmp_path: Path, make_clip) -> None:
    make_clip(tmp_path / "take1.mp4", frames=5, width=32, height=32)
    (tmp_path / "take1.txt").write_text("sks on a bridge\n")
    (tmp_path / "out" / "validation").mkdir(parents=True)
    make_clip(tmp_path / "out" / "validation" / "00.mp4", frames=5, width=32, height=32)

    assets = discover(tmp_path, captions=True, output=tmp_path / "out")

    assert [(a.key, a.caption) for a in assets] == [("take1.mp4", "sks on a bridge")]
    assert len(assets[0].sha256) == 64


def test_cli_lora_targets_and_alpha_reach_the_export(tmp_path: Path, clips_dir: Path) -> None:
    out = tmp_path / "out"

    code = main(
        [str(clips_dir), str(out), *TINY_ARGS, "--steps", "1", "--targets", "to_q, to_v", "--alpha", "2"]
    )

    assert code == 0
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (config["targets"], config["rank"], config["alpha"]) == (["to_q", "to_v"], 4, 2.0)


def test_cli_offload_setting_reaches_the_run(tmp_path: Path, clips_dir: Path) -> None:
    out = tmp_path / "out"

    code = main([str(clips_dir), str(out), *TINY_ARGS, "--steps", "1", "--offload-activations", "on"])

    assert code == 0
    record = json.loads((out / "adapter" / "training_record.json").read_text())
    assert record["hyperparameters"]["offload_activations"] == "on"
    assert record["activations_offloaded"] is True
