"""`voicecoach model fetch|list`: install the official vosk models and show what is installed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from voicecoach import download, paths
from voicecoach.cli import config as cli_config
from voicecoach.listen import models


def register(sub: argparse._SubParsersAction) -> None:
    add_fetch_and_list(
        sub,
        "model",
        "speech models",
        languages=sorted(models.MODELS),
        handlers=(cmd_fetch, cmd_list),
        fetch_help="download and install the official vosk model for a language",
        url_help="a mirror: the zip's URL, or a directory URL holding the same file name",
        list_help="show installed models, their language and decoding mode",
    )


def add_fetch_and_list(
    sub: argparse._SubParsersAction,
    noun: str,
    things: str,
    languages: list[str],
    handlers: tuple[Callable[[argparse.Namespace], int], Callable[[argparse.Namespace], int]],
    fetch_help: str,
    url_help: str,
    list_help: str,
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """`voicecoach NOUN fetch|list` with the arguments that models and voices share; the fetch parser, and NOUN's
    subcommands, for more."""
    group = sub.add_parser(noun, help=f"fetch or list {things}")
    actions = group.add_subparsers(dest=f"{noun}_command", metavar="{fetch,list}", required=True)
    where = f"{noun}s directory (default: the state directory's {noun}s/)"

    fetch = actions.add_parser("fetch", help=fetch_help)
    fetch.set_defaults(func=handlers[0])
    fetch.add_argument("lang", nargs="?", default="sv", choices=languages, help="language (default sv)")
    fetch.add_argument("--url", help=url_help)
    fetch.add_argument("--dir", type=Path, help=where)
    cli_config.add_config_argument(fetch)

    listing = actions.add_parser("list", help=list_help)
    listing.set_defaults(func=handlers[1])
    listing.add_argument("--dir", type=Path, help=where)
    cli_config.add_config_argument(listing)
    return fetch, actions


def _models_dir(args: argparse.Namespace) -> Path:
    """--dir, else the models/ of the configuration's state directory, where the daemon looks."""
    return args.dir or paths.models_dir(cli_config.load_from_args(args).state_dir)


def cmd_fetch(args: argparse.Namespace) -> int:
    spec = models.MODELS[args.lang]
    models_dir = _models_dir(args)
    there = models.is_model(models_dir / spec.name)
    return fetch_unless_there(
        spec.name, models_dir, there, lambda: models.fetch(spec, models_dir, args.url, sys.stderr)
    )


def fetch_unless_there(name: str, directory: Path, there: bool, fetch: Callable[[], Path]) -> int:
    """Run fetch, unless `name` is there already: the one that is installed is left as it is."""
    if there:
        print(f"{name} is already installed in {directory}", file=sys.stderr)
    else:
        print(f"installed {name} in {fetch()}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    models_dir = _models_dir(args)
    found = models.installed(models_dir)
    if not found:
        print(f"no models in {models_dir}; install one with 'voicecoach model fetch sv'", file=sys.stderr)
        return 0
    width = max(len(m.name) for m in found)
    print(f"{'MODEL':<{width}}  LANGUAGE  {'MODE':<16}  SIZE")
    for m in found:
        print(f"{m.name:<{width}}  {m.lang:<8}  {m.mode:<16}  {download.mib(m.size)}")
    return 0
