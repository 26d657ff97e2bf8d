"""TLS material: a local CA and a server certificate generated into the data directory.
The server certificate is issued again when the names change or its end comes near."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openccs.log import get_logger, log_event

log = get_logger("openccs.tls")

SERVER_CERT_DAYS = 825
# A server certificate this close to its end is issued again (at start, and while running).
RENEW_BEFORE = datetime.timedelta(days=30)

API_HOSTS = (
    "ccs.api.qcloud.com",
    "ccr.api.qcloud.com",
    "monitor.api.qcloud.com",
    "vpc.api.qcloud.com",
)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_private(path, key_pem(key))


def self_signed(
    key: ec.EllipticCurvePrivateKey, common_name: str, days: int = 3650
) -> x509.CertificateBuilder:
    """A self-issued certificate for `key`, valid from yesterday; callers add extensions."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def new_ca(name: str) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a new certificate authority called `name`."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        self_signed(key, name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem(key).decode()


def ensure_ca(tls_dir: Path) -> tuple[Path, Path]:
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
    if ca_pem.exists() and ca_key.exists():
        return ca_pem, ca_key
    cert, key = new_ca("openccs local CA")
    _write_private(ca_key, key.encode())
    ca_pem.write_text(cert)
    return ca_pem, ca_key


def issue_certificate(
    tls_dir: Path, name: str, dns_names: list[str], ips: list[str], days: int = SERVER_CERT_DAYS
) -> tuple[Path, Path]:
    """A server certificate signed by the local CA, for the given names and addresses."""
    ca_pem, ca_key_path = ensure_ca(tls_dir)
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tls_dir / f"{name}.pem", tls_dir / f"{name}-key.pem"
    _write_private(key_path, key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem.read_bytes())
    return cert_path, key_path


def ensure_server_certificate(tls_dir: Path, extra_hosts: list[str]) -> tuple[Path, Path]:
    """The API's certificate: loopback, the API host names, and any listen address given."""
    dns = ["localhost", *API_HOSTS]
    ips = ["127.0.0.1", "::1"]
    for h in extra_hosts:
        try:
            ipaddress.ip_address(h)
        except ValueError:
            if h not in dns:
                dns.append(h)
        else:
            if h not in ips and h not in ("0.0.0.0", "::"):
                ips.append(h)
    wanted = ",".join(sorted(dns + ips))
    marker = tls_dir / "server.names"
    cert, key = tls_dir / "server.pem", tls_dir / "server-key.pem"
    if cert.exists() and key.exists() and marker.exists() and marker.read_text() == wanted:
        ends = not_valid_after(cert)
        if ends is not None and ends - RENEW_BEFORE > datetime.datetime.now(datetime.UTC):
            return cert, key
        log_event(
            log,
            "server certificate renewed",
            reason="unreadable" if ends is None else "expires",
            not_after="-" if ends is None else ends.strftime("%Y-%m-%d %H:%M:%S"),
        )
    cert, key = issue_certificate(tls_dir, "server", dns, ips)
    marker.write_text(wanted)
    return cert, key


def not_valid_after(path: Path) -> datetime.datetime | None:
    """The end of the first certificate of a PEM file (UTC), or None if it cannot be read."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None
