"""A real SMTP server for the mail tests: aiosmtpd, listening on 127.0.0.1 at a port the OS picks.

Prints the port on the first line of stdout once it accepts connections, then writes every message it
receives as <n>.eml (the bytes as received) into the directory given, printing the file's name once it is
complete, until it is killed.

With --delay-ms, it prints "receiving" when a message's data starts and waits that long before accepting
it: a slow server, to catch a client in the middle of a send.

Usage: python server.py MAIL_DIR [--tls-cert CERT --tls-key KEY --mode plain|starttls|smtps] [--delay-ms N]
"""

import argparse
import asyncio
import itertools
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP


class SaveToDirectory:
    def __init__(self, directory, delay_ms):
        self.directory = directory
        self.delay_ms = delay_ms
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.delay_ms:
            print("receiving", flush=True)
            await asyncio.sleep(self.delay_ms / 1000)
        name = os.path.join(self.directory, f"{next(self.numbers):04}.eml")
        # Written then renamed: a reader never sees half a message.
        with open(name + ".part", "wb") as out:
            out.write(envelope.original_content or envelope.content)
        os.rename(name + ".part", name)
        print(name, flush=True)
        return "250 Message accepted for delivery"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mail_dir")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--mode", choices=["plain", "starttls", "smtps"], default="plain")
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.mail_dir, exist_ok=True)
    handler = SaveToDirectory(args.mail_dir, args.delay_ms)
    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.mode == "starttls":
        factory = lambda: SMTP(handler, tls_context=context, require_starttls=True, hostname="localhost")
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    elif args.mode == "smtps":
        factory = lambda: SMTP(handler, hostname="localhost")
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=context)
    else:
        factory = lambda: SMTP(handler, hostname="localhost")
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
