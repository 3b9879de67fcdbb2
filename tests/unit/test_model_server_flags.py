"""``model-server`` flags for the mimics: parsed into the config, bad values one line, exit 2."""

from __future__ import annotations

import pytest

from model_server.__main__ import build_parser, config_from_args, main


def config(*flags: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return config_from_args(build_parser(environ or {}).parse_args(list(flags)))


def test_without_mimic_the_defaults_hold() -> None:
    assert config().mimic is None


def test_mimic_and_the_token_model_come_from_flags_or_the_environment() -> None:
    parsed = config(
        "--mimic", "vllm", "--time-per-output-token", "4ms", "--kv-cache-tokens", "4096"
    )
    assert (parsed.mimic, parsed.tokens.decode_step_seconds) == ("vllm", 0.004)
    assert parsed.tokens.kv_capacity_tokens == 4096
    assert parsed.tokens.prefill_seconds_per_token == pytest.approx(0.0001)
    assert config(environ={"MODEL_SERVER_MIMIC": "triton"}).mimic == "triton"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mimic", "kserve"], "invalid choice: 'kserve'"),
        (["--kv-cache-tokens", "8"], "the KV cache must hold at least one block"),
        (["--max-model-len", "0"], "must be a positive integer"),
        (["--max-queue", "-1"], "argument --max-queue: must be an integer >= 0"),
        (["--time-per-output-token", "fast"], "--time-per-output-token"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(flags)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
