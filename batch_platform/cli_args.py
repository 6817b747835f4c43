"""The arguments the `batch-platform` commands share — a quarter, a `--from`/`--to` range — checked
before any work, and `UsageError`, the refusal every command raises: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse

from batch_platform.config import PlatformConfig
from batch_platform.partitions import (
    NotAPartitionError,
    QuarterError,
    check_partition,
    parse_quarter,
    quarter_range,
    to_label,
)


class UsageError(Exception):
    """A request the command cannot carry out, refused before any work: one line on stderr, exit 2."""


def quarter_arg(text: str) -> str:
    try:
        return to_label(text)
    except QuarterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_arg(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def range_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--from", dest="first", type=quarter_arg, required=required, help="first quarter, e.g. 2024-Q1")
    parser.add_argument("--to", dest="last", type=quarter_arg, help="last quarter (default: --from)")


def forward_range(args: argparse.Namespace) -> list[str]:
    first, last = args.first, args.last or args.first
    if parse_quarter(last) < parse_quarter(first):
        raise UsageError(f"--to {last} comes before --from {first}: a range runs forwards, --from {last} --to {first}")
    return quarter_range(first, last)


def partition_range(args: argparse.Namespace, config: PlatformConfig) -> list[str]:
    """The quarters of `--from`/`--to`, every one a partition of `config`, else `UsageError`."""
    quarters = forward_range(args)
    try:
        for quarter in (quarters[0], quarters[-1]):
            check_partition(quarter, config.batch.first_quarter)
    except NotAPartitionError as exc:
        raise UsageError(str(exc)) from None
    return quarters
