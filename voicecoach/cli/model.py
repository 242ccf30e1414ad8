"""`voicecoach model fetch|list`: install the official vosk models and show what is installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voicecoach import download, paths
from voicecoach.cli import config as cli_config
from voicecoach.listen import models


def register(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="fetch or list speech models")
    actions = model.add_subparsers(dest="model_command", metavar="{fetch,list}", required=True)

    fetch = actions.add_parser("fetch", help="download and install the official vosk model for a language")
    fetch.set_defaults(func=cmd_fetch)
    fetch.add_argument("lang", nargs="?", default="sv", choices=sorted(models.MODELS), help="language (default sv)")
    fetch.add_argument("--url", help="a mirror: the zip's URL, or a directory URL holding the same file name")
    fetch.add_argument("--dir", type=Path, help="models directory (default: the state directory's models/)")
    cli_config.add_config_argument(fetch)

    listing = actions.add_parser("list", help="show installed models, their language and decoding mode")
    listing.set_defaults(func=cmd_list)
    listing.add_argument("--dir", type=Path, help="models directory (default: the state directory's models/)")
    cli_config.add_config_argument(listing)


def _models_dir(args: argparse.Namespace) -> Path:
    """--dir, else the models/ of the configuration's state directory, where the daemon looks."""
    return args.dir or paths.models_dir(cli_config.load_from_args(args).state_dir)


def cmd_fetch(args: argparse.Namespace) -> int:
    spec = models.MODELS[args.lang]
    models_dir = _models_dir(args)
    target = models_dir / spec.name
    if models.is_model(target):
        print(f"{spec.name} is already installed in {models_dir}", file=sys.stderr)
        return 0
    installed = models.fetch(spec, models_dir, mirror=args.url, stream=sys.stderr)
    print(f"installed {spec.name} in {installed}")
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
