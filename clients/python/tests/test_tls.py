"""`tls=`: the client reaches a proxy that serves TLS on its data port with
a certificate from a CA the test makes, and a client that trusts another CA
is refused."""

from __future__ import annotations

import datetime
import ipaddress
import tempfile
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from prism_client import PrismClient, PrismError, RetryPolicy
from proxy import Proxy, start_proxy

CONFIG = """tls:
  cert_file: {cert}
  key_file: {key}
  listeners: [data]
"""


def make_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prism-proxy")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_proxy() -> Iterator[tuple[Proxy, bytes]]:
    ca_key, ca = make_ca("prism test CA")
    key, cert = make_server_cert(ca_key, ca)
    with tempfile.TemporaryDirectory(prefix="prism-pyclient-tls-") as folder:
        cert_file, key_file = Path(folder) / "server.pem", Path(folder) / "server.key"
        cert_file.write_bytes(pem(cert))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        proxy = start_proxy(CONFIG.format(cert=cert_file, key=key_file))
        try:
            yield proxy, pem(ca)
        finally:
            proxy.stop()


async def test_a_client_that_trusts_the_ca_is_served(tls_proxy: tuple[Proxy, bytes]) -> None:
    proxy, ca = tls_proxy
    tls = grpc.ssl_channel_credentials(root_certificates=ca)
    # The default namespace may still be starting: UNAVAILABLE is retried.
    patient = RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.5)
    async with PrismClient(proxy.address, tls=tls, retry=patient, timeout=30) as client:
        await client.keyvalue.set("tls-k", b"over TLS")
        assert await client.keyvalue.get("tls-k") == b"over TLS"


async def test_a_client_that_trusts_another_ca_is_refused(tls_proxy: tuple[Proxy, bytes]) -> None:
    proxy, _ = tls_proxy
    tls = grpc.ssl_channel_credentials(root_certificates=pem(make_ca("someone else")[1]))
    async with PrismClient(proxy.address, tls=tls, timeout=3) as client:
        with pytest.raises(PrismError) as caught:
            await client.keyvalue.get("tls-k")
    assert caught.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_a_plaintext_client_is_refused(tls_proxy: tuple[Proxy, bytes]) -> None:
    proxy, _ = tls_proxy
    async with PrismClient(proxy.address, timeout=3) as client:
        with pytest.raises(PrismError):
            await client.keyvalue.get("tls-k")
