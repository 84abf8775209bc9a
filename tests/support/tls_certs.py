"""A throwaway CA, server and client certificates for TLS and mTLS tests (made in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


@dataclass(frozen=True)
class Pki:
    ca: Pem
    server: Pem
    client: Pem
    other_ca: Pem  # trusted by nobody: for "wrong roots" tests

    def write(self, folder: Path) -> dict[str, Path]:
        paths = {}
        for name, pem in (("ca", self.ca), ("server", self.server), ("client", self.client)):
            paths[f"{name}_cert"] = folder / f"{name}.crt"
            paths[f"{name}_key"] = folder / f"{name}.key"
            paths[f"{name}_cert"].write_bytes(pem.cert)
            paths[f"{name}_key"].write_bytes(pem.key)
        return paths


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    common_name: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    sans: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> tuple[Pem, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)), subject, key


def make_pki(server_names: tuple[str, ...] = ("localhost",)) -> Pki:
    """A CA; a server certificate for 127.0.0.1 plus `server_names`; a client certificate."""
    ca, ca_name, ca_key = _issue("satchel test CA", None)
    sans: list[x509.GeneralName] = [x509.IPAddress(ip_address("127.0.0.1"))]
    sans += [x509.DNSName(name) for name in server_names]
    server, _, _ = _issue(
        "satchel test server", (ca_name, ca_key), sans=sans, usage=ExtendedKeyUsageOID.SERVER_AUTH
    )
    client, _, _ = _issue("game-server-1", (ca_name, ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    other_ca, _, _ = _issue("untrusted CA", None)
    return Pki(ca, server, client, other_ca)


def issue_client(
    ca: Pem, common_name: str, *, uris: tuple[str, ...] = (), dns_names: tuple[str, ...] = ()
) -> Pem:
    """A client certificate signed by `ca` (one made here), naming the given SANs."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri) for uri in uris]
    sans += [x509.DNSName(name) for name in dns_names]
    client, _, _ = _issue(
        common_name,
        (ca_cert.subject, ca_key),
        sans=sans or None,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return client
