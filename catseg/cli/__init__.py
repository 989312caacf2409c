"""The command line: the app's jobs in batch. Every failure is one line on stderr and a non-zero exit.

Each *_commands module adds its own sub-commands with `add_commands`; COMMAND_MODULES below is the
one list of them. The modules import the heavy parts (TensorFlow) only inside a command,
so `--help` and the dataset commands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from catseg.cli import check_commands, dataset_commands, prediction_commands, training_commands
from catseg.cli.terminal import EXIT_FAILURE

# Every sub-command, in the order `--help` lists them.
COMMAND_MODULES = (dataset_commands, training_commands, prediction_commands, check_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catseg", description="Cat segmentation and colour splash.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's start-up chatter (CUDA probes on a CPU machine) is noise to a CLI user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.handler(arguments)
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
