"""`satchel --help` and each command's help speak to users, not to Satchel's developers."""

from __future__ import annotations

import argparse

import pytest

from satchel_server.cli import _parser, main

# Words about Satchel's insides that a user of the command has no use for.
_INSIDE_WORDS = ("composition root", "wires", "wiring", "servicer", "pipeline")


def _commands() -> dict[str, argparse.ArgumentParser]:
    subparsers = next(
        action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction)
    )
    return dict(subparsers.choices)


def test_the_top_help_says_what_satchel_does_and_where_to_start() -> None:
    text = _parser().format_help()
    assert "OSS" in text
    assert "satchel dev" in text
    assert not any(word in text.lower() for word in _INSIDE_WORDS)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_a_description_of_its_own(name: str) -> None:
    command = _commands()[name]
    assert command.description, f"satchel {name} --help has no description"
    assert not any(word in command.description.lower() for word in _INSIDE_WORDS)
    for action in command._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"satchel {name} {action.option_strings[0]} has no help"


def test_a_bad_listen_flag_is_named_as_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--listen", "not-an-address"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("satchel: --listen: ")
    assert "configuration key" not in error
