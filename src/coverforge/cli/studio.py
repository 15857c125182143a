"""`coverforge studio [--workspace DIR] [--host 127.0.0.1] [--port 7860]`: the local web app."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", default=".", help="folder with configs/, runs, models and datasets; the studio writes into WORKSPACE/studio (default: here)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other address requires a token)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--token", default=None, help="access token for a non-loopback bind (default: a random one, printed)")


def run(args: argparse.Namespace) -> int:
    from coverforge.studio.server import serve

    serve(args.workspace, args.host, args.port, args.token)
    return 0
