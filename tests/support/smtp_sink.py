#!/usr/bin/env python3
"""A real SMTP server for the black-box tests: accepts mail on 127.0.0.1:PORT and keeps each
message as one file, so a test reads what a mail server would have received.

    smtp_sink.py PORT FOLDER

FOLDER/received/*.eml  every accepted message, written atomically (temp file, fsync, rename),
                       with the envelope prepended as X-Sink-Mail-From / X-Sink-Rcpt-To headers
FOLDER/ready           written once the port is listening
FOLDER/refuse          while it exists, every message is refused with a 550 reply
FOLDER/hang            while it exists, a message that reached the end of DATA gets no reply:
                       it is kept in FOLDER/hung/ (not received) and the connection waits; once
                       the marker is gone it is answered 451, so it never counts as delivered

The markers are read per message, so a test switches modes by creating or removing a file.
Exits 3 when aiosmtpd is missing, and by itself when the process that started it is gone.
"""

import asyncio
import os
import signal
import sys
import time
import uuid

try:
    from aiosmtpd.smtp import SMTP
except ImportError as e:  # pragma: no cover - reported to the test, which skips or fails
    print(f"smtp_sink: aiosmtpd is not installed ({e}); python3 -m pip install aiosmtpd", file=sys.stderr)
    sys.exit(3)


def write_atomically(folder, name, data):
    """A reader never sees half a message: the file appears whole under its final name."""
    tmp = os.path.join(folder, f".{name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(folder, name))


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.received = os.path.join(folder, "received")
        self.hung = os.path.join(folder, "hung")
        os.makedirs(self.received, exist_ok=True)
        os.makedirs(self.hung, exist_ok=True)

    def marker(self, name):
        return os.path.exists(os.path.join(self.folder, name))

    async def handle_DATA(self, server, session, envelope):
        if self.marker("refuse"):
            return "550 5.7.1 refused by the test sink"
        envelope_headers = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        data = envelope_headers + content
        # Names sort in arrival order.
        name = f"{time.time_ns()}-{uuid.uuid4().hex}.eml"
        if self.marker("hang"):
            write_atomically(self.hung, name, data)
            while self.marker("hang"):
                await asyncio.sleep(0.05)
            return "451 4.3.0 the test sink stopped hanging; send it again"
        write_atomically(self.received, name, data)
        return "250 2.0.0 kept by the test sink"


async def main(port, folder):
    loop = asyncio.get_running_loop()
    handler = Sink(folder)
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, data_size_limit=None, hostname="sink.test"),
        host="127.0.0.1",
        port=port,
        reuse_address=True,
    )
    write_atomically(folder, "ready", str(os.getpid()).encode())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    # An orphan (the test binary died without killing it) exits instead of holding the port.
    while not stop.is_set() and os.getppid() == parent:
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass
    server.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
