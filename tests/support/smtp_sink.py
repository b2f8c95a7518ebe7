#!/usr/bin/env python3
"""A local SMTP server that keeps every message it accepts as a file, and can
be told to misbehave. The notification service's tests start it as a
subprocess; the local stack runs it so a newcomer can read the mail the flow
sends (one `.eml` file per message, openable in any mail client).

    smtp_sink.py --dir .dev/mail [--host 127.0.0.1] [--port 2525] [--control FILE]

Prints `LISTENING <port>` on stdout once it accepts connections (`--port 0`
picks a free port), then one line per SMTP transaction.

Misbehaviour, chosen by the recipient address (so tests running side by side
do not disturb each other):

- `nobody…@…` (local part starting with `nobody`): `550 5.1.1` at RCPT, an
  unknown mailbox; a permanent failure.
- `tempfail-<N>-…@…`: `451 4.3.0` at RCPT for the first N attempts to that
  exact address, then accepted; a transient failure that clears.

or by the control file (`--control`), a JSON object re-read on every
transaction, which applies to every recipient:

- `{"mode": "accept"}` (or no file): normal;
- `{"mode": "tempfail"}`: `451` to every RCPT until changed;
- `{"mode": "reject"}`: `550` to every RCPT until changed.

Accepted messages are written as `<dir>/<utc-time>-<seq>.eml`: the message as
received, after `X-Sink-Mail-From` and `X-Sink-Rcpt-To` header lines naming
the envelope. Each file is written under a temporary name and renamed, so a
reader counting `*.eml` never sees half a message.

`--auth USER:PASSWORD` makes it require AUTH (PLAIN or LOGIN, allowed over
the plain connection) with exactly those credentials.

Needs `aiosmtpd` (scripts/lib/deps.sh installs it into the tools venv).
"""

import argparse
import asyncio
import collections
import datetime
import itertools
import json
import os
import re
import signal
import warnings
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError:  # pragma: no cover - the message is the point
    sys.exit(
        "smtp_sink.py needs the aiosmtpd package: "
        "pip install aiosmtpd (scripts/lib/deps.sh puts it in ~/.cache/helpdesk-tools/venv)"
    )

TEMPFAIL = re.compile(r"^tempfail-(\d+)-", re.IGNORECASE)


class Sink:
    """The aiosmtpd handler: decides each RCPT, stores each accepted DATA."""

    def __init__(self, directory, control):
        self.directory = directory
        self.control = control
        self.attempts = collections.Counter()
        self.seq = itertools.count(1)

    def mode(self):
        if not self.control:
            return "accept"
        try:
            with open(self.control, encoding="utf-8") as f:
                return json.load(f).get("mode", "accept")
        except FileNotFoundError:
            return "accept"
        except (OSError, ValueError) as e:
            log(f"control file {self.control} unreadable ({e}); accepting")
            return "accept"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        self.attempts[address] += 1
        attempt = self.attempts[address]
        mode = self.mode()
        tempfail = TEMPFAIL.match(local)
        if mode == "reject" or local.startswith("nobody"):
            log(f"RCPT {address}: 550 (attempt {attempt})")
            return "550 5.1.1 Mailbox unknown"
        if mode == "tempfail" or (tempfail and attempt <= int(tempfail.group(1))):
            log(f"RCPT {address}: 451 (attempt {attempt})")
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{next(self.seq):05d}.eml"
        head = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        tmp = os.path.join(self.directory, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(head + envelope.original_content)
        os.replace(tmp, os.path.join(self.directory, name))
        log(f"DATA from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}: 250 {name}")
        return "250 2.0.0 Message accepted"


def authenticator(user, password):
    """Accepts exactly `user` and `password`."""

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            getattr(auth_data, "login", None) == user.encode()
            and getattr(auth_data, "password", None) == password.encode()
        )
        log(f"AUTH {mechanism}: {'accepted' if ok else 'refused'}")
        return AuthResult(success=ok)

    return check


def log(line):
    print(line, flush=True)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", required=True, help="where accepted messages are written")
    parser.add_argument("--control", help="JSON file choosing a mode for every recipient")
    parser.add_argument("--auth", help="USER:PASSWORD that AUTH must present")
    args = parser.parse_args()
    auth = {}
    if args.auth:
        # aiosmtpd warns about AUTH without TLS: intended here, a local sink.
        warnings.filterwarnings("ignore")
        user, password = args.auth.split(":", 1)
        auth = dict(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    os.makedirs(args.dir, exist_ok=True)

    loop = asyncio.get_running_loop()
    handler = Sink(args.dir, args.control)
    server = await loop.create_server(
        # 8BITMIME is always offered; SMTPUTF8 lets non-ASCII addresses in.
        lambda: SMTP(handler, hostname="smtp-sink", enable_SMTPUTF8=True, loop=loop, **auth),
        host=args.host,
        port=args.port,
    )
    port = server.sockets[0].getsockname()[1]
    log(f"LISTENING {port}")
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
