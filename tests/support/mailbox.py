"""A real SMTP server (aiosmtpd) in the test process, on a loopback port, that records what it gets."""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.live import free_port

USER, PASSWORD = "avisos", "clave-smtp"


@dataclass(frozen=True)
class Received:
    """One mail as the server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool
    authenticated: bool
    at: float

    @property
    def message(self) -> EmailMessage:
        """The mail parsed (headers decoded; an SMTPUTF8 mail's raw headers are UTF-8)."""
        text = self.raw.decode("utf-8")
        return email.message_from_string(text, policy=email.policy.default)  # type: ignore[return-value]

    def texts(self) -> str:
        """Every header and every part, decoded, as one string."""
        msg = self.message
        out = [f"{k}: {v}" for k, v in msg.items()]
        for part in msg.walk():
            if not part.is_multipart():
                out.append(str(part.get_content()))
        return "\n".join(out)


class Mailbox:
    """aiosmtpd on 127.0.0.1:port. It can refuse the next mails, stop, or hold a mail mid-way."""

    def __init__(self, tls_dir: Path | None = None, auth: bool = False) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refuse_next: list[int] = []  # reply codes for the next DATA (e.g. 451)
        self.hold_at: str | None = None  # "rcpt" or "data": wait there until released
        self.holding = threading.Event()
        self.release = threading.Event()
        self.ca_file: str | None = None
        self._cond = threading.Condition()
        self._kw: dict = {}
        if tls_dir is not None:
            cert, key = self_signed(tls_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.ca_file = str(cert)
            self._kw["tls_context"] = context
        if auth:
            self._kw |= {"authenticator": _check_login, "auth_require_tls": True}
        self.controller: Controller | None = None
        self.start()

    def url(self, auth: bool = False) -> str:
        """SMTP_URL for this server."""
        who = f"{USER}:{PASSWORD}@" if auth else ""
        return f"smtp://{who}127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again, on the same port)."""
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **self._kw)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused."""
        self.release.set()
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        """Accept any recipient (holding here if asked)."""
        if self.hold_at == "rcpt":
            await self._hold()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        """Record the mail, or refuse it; with hold_at "data", hold the reply once it is here."""
        if self.refuse_next:
            return f"{self.refuse_next.pop(0)} 4.3.0 Inténtelo más tarde"
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            raw=envelope.original_content,
            tls=session.ssl is not None,
            authenticated=bool(session.authenticated),
            at=time.monotonic(),
        )
        with self._cond:
            self.received.append(received)
            self._cond.notify_all()
        if self.hold_at == "data":
            await self._hold()
        return "250 Message accepted for delivery"

    async def _hold(self) -> None:
        self.holding.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.release.wait, 30)

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        """The mails once there are at least `count`, or fail after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} mail(s), wanted {count}")
                self._cond.wait(left)
            return list(self.received)


def _check_login(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to folder."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
