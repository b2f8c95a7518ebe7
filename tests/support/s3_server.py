#!/usr/bin/env python3
"""A local S3 API server for tests: moto in server mode, on 127.0.0.1.

    s3_server.py [--port 0] [--bucket NAME ...]

Prints `LISTENING <port>` on stdout once it accepts connections (`--port 0`
picks a free port) and the named buckets exist, then serves until stdin
closes or it is terminated (the test that started it holds its stdin).

Needs `moto[server]` (scripts/lib/deps.sh installs it into the tools venv).
"""

import argparse
import logging
import sys

try:
    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
except ImportError:  # pragma: no cover - the message is the point
    sys.exit(
        "s3_server.py needs moto[server]: "
        "bash -c 'source scripts/lib/deps.sh && ensure_moto'"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bucket", action="append", default=[])
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    for bucket in args.bucket:
        s3.create_bucket(Bucket=bucket)
    print(f"LISTENING {port}", flush=True)
    sys.stdin.read()  # until the parent closes it (or dies)
    server.stop()


if __name__ == "__main__":
    main()
