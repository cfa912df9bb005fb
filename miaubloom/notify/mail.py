"""The notification e-mail and its delivery over SMTP: who wrote, how many, a link; never the text."""

from __future__ import annotations

import email.policy
import hashlib
import ipaddress
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import unquote, urlsplit


class Transient(Exception):
    """The mail was not delivered, and may be on a later try (network, 4xx, configuration)."""


class Permanent(Exception):
    """The server refused this mail for good (5xx): it is dropped."""


class Ambiguous(Exception):
    """The connection broke during DATA: the server may or may not have the mail."""


@dataclass(frozen=True)
class Smtp:
    """Where and how to send: from SMTP_URL (smtp:// with STARTTLS when offered, or smtps://)."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None
    timeout: float
    ca_file: str | None

    @classmethod
    def from_url(cls, url: str, timeout: float, ca_file: str = "") -> Smtp:
        """Parse smtp://[user[:password]@]host[:port] or smtps://…; ValueError if malformed."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:587")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
            ca_file=ca_file or None,
        )

    def tls_context(self) -> ssl.SSLContext:
        """Certificates checked against the system's authorities, or SMTP_CA_FILE's."""
        return ssl.create_default_context(cafile=self.ca_file)


@dataclass(frozen=True)
class Notice:
    """What a notification says: nothing of the messages but how many there are and from whom."""

    to_email: str
    to_name: str
    from_name: str
    count: int
    link: str
    key: str  # (conversation, member, last seq covered): the same notice has the same Message-ID


def subject(count: int, from_name: str) -> str:
    """ "Tienes N mensajes nuevos de <nombre> en MiauBloom" (singular for one)."""
    what = "1 mensaje nuevo" if count == 1 else f"{count} mensajes nuevos"
    return f"Tienes {what} de {from_name} en MiauBloom"


def default_sender(base_url: str) -> str:
    """MiauBloom <no-reply@the page's host> (localhost for an address or none)."""
    host = urlsplit(base_url).hostname or "localhost"
    try:
        ipaddress.ip_address(host)
        host = "localhost"
    except ValueError:
        pass
    return f"MiauBloom <no-reply@{host}>"


def compose(notice: Notice, sender: str) -> EmailMessage:
    """The mail: plain text, in Spanish, with the link; the message text is never an input."""
    name, address = parseaddr(sender)
    domain = address.rpartition("@")[2] or "localhost"
    # An address with non-ASCII characters goes out as SMTPUTF8 (deliver() asks the server).
    plain = address.isascii() and notice.to_email.isascii()
    mail = EmailMessage(policy=email.policy.SMTP if plain else email.policy.SMTPUTF8)
    mail["From"] = _address(name or "MiauBloom", address)
    mail["To"] = _address(notice.to_name, notice.to_email)
    mail["Subject"] = subject(notice.count, notice.from_name)
    mail["Date"] = formatdate(usegmt=True)
    digest = hashlib.sha256(notice.key.encode()).hexdigest()[:32]
    mail["Message-ID"] = f"<{digest}@{domain}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(
        f"Hola, {notice.to_name}:\n\n"
        f"{subject(notice.count, notice.from_name)}.\n\n"
        f"Ábrelos aquí: {notice.link}\n\n"
        "Por tu privacidad, estos avisos nunca incluyen el texto de los mensajes.\n"
        "Si no quieres recibirlos, desactívalos en la página del chat.\n",
        cte="quoted-printable" if plain else "8bit",
    )
    return mail


def _address(name: str, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    return Address(name, username=local, domain=domain)


def deliver(smtp: Smtp, mail: EmailMessage, before_data: Callable[[], bool]) -> bool:
    """Send one mail; False if before_data() said the claim was lost (nothing sent).

    before_data() runs after the recipient is accepted and right before DATA,
    so that a crash from then on is known to be ambiguous. Raises Transient,
    Permanent or Ambiguous.
    """
    sender = mail["From"].addresses[0].addr_spec
    recipient = mail["To"].addresses[0].addr_spec
    conn = _connect(smtp)
    try:
        _envelope(conn, smtp, sender, recipient)
        if not before_data():
            return False
        _data(conn, mail)
        return True
    finally:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            conn.close()


def _connect(smtp: Smtp) -> smtplib.SMTP:
    try:
        if smtp.implicit_tls:
            return smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=smtp.tls_context()
            )
        return smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise Transient(f"cannot connect: {type(exc).__name__}") from exc


def _envelope(conn: smtplib.SMTP, smtp: Smtp, sender: str, recipient: str) -> None:
    """EHLO, STARTTLS when offered, AUTH when configured, MAIL FROM, RCPT TO."""
    try:
        conn.ehlo()
        secure = smtp.implicit_tls
        if not secure and conn.has_extn("starttls"):
            conn.starttls(context=smtp.tls_context())
            conn.ehlo()
            secure = True
        if smtp.username:
            if not secure:
                # Never a password in clear: the server must offer STARTTLS (or use smtps://).
                raise Transient("the server offers no STARTTLS; credentials not sent")
            conn.login(smtp.username, smtp.password or "")
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            if not conn.has_extn("smtputf8"):
                raise Permanent("the address is not ASCII and the server has no SMTPUTF8")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        _expect(conn.mail(sender, options), 250)
        _expect(conn.rcpt(recipient), 250, 251)
    except smtplib.SMTPAuthenticationError as exc:
        # Wrong credentials are the operator's to fix, not this mail's fault: retried.
        raise Transient(f"authentication refused ({exc.smtp_code})") from exc
    except smtplib.SMTPResponseException as exc:
        raise _by_code(exc.smtp_code) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise Transient(f"{type(exc).__name__} before DATA") from exc


def _data(conn: smtplib.SMTP, mail: EmailMessage) -> None:
    """DATA: a refusal is definite; a broken connection after the content is ambiguous."""
    try:
        code, _ = conn.data(mail.as_bytes())
    except smtplib.SMTPDataError as exc:
        raise _by_code(exc.smtp_code) from exc  # DATA itself refused: nothing was sent
    except (OSError, smtplib.SMTPException) as exc:
        raise Ambiguous(f"{type(exc).__name__} during DATA") from exc
    if code != 250:
        raise _by_code(code)


def _expect(reply: tuple[int, bytes], *codes: int) -> None:
    code = reply[0]
    if code not in codes:
        raise smtplib.SMTPResponseException(code, reply[1])


def _by_code(code: int) -> Exception:
    if 500 <= code < 600:
        return Permanent(f"refused with {code}")
    return Transient(f"answered {code}")
