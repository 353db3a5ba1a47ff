"""ISO 8583 over TLS: server certificate, and a bank identified by its client certificate."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ssl
import subprocess
import sys
from datetime import date

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from billdata import add_pbb

pytestmark = pytest.mark.integration

NOP = "327501000100100010"


def make_cert(path, name: str, issuer_key=None, issuer_name=None, ca: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                                     x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                                        critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    (path.parent / f"{path.name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (path.parent / f"{path.name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key


async def test_tls_with_client_certificates(make_gateway, db, tmp_path):
    ca_cert, ca_key = make_cert(tmp_path / "ca", "Test CA", ca=True)
    make_cert(tmp_path / "server", "localhost", ca_key, ca_cert.subject)
    bank_cert, _ = make_cert(tmp_path / "bank110", "bank 110", ca_key, ca_cert.subject)
    other_cert, _ = make_cert(tmp_path / "bank120", "bank 120", ca_key, ca_cert.subject)
    fingerprint = hashlib.sha256(bank_cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    other_fp = hashlib.sha256(other_cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    banks = f"""
[[banks]]
code = "110"
allow = ["127.0.0.1/32"]
client_cert_fingerprint = "{fingerprint}"
"""
    extra = (f'tls_cert = "{tmp_path}/server.pem"\ntls_key = "{tmp_path}/server.key"\n'
             f'tls_client_ca = "{tmp_path}/ca.pem"\n')
    gw = make_gateway(banks=banks, extra=extra)
    await add_pbb(db, due=date(2099, 8, 31))

    def context(name: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        ctx.load_cert_chain(str(tmp_path / f"{name}.pem"), str(tmp_path / f"{name}.key"))
        return ctx

    bank = gw.client()
    await bank.connect(ssl=context("bank110"))
    try:
        answer = await bank.request(bank.inquiry("pbb", NOP + "2026"))
        assert (answer["t"], answer["39"], answer["4"]) == ("0210", "00", "000000150000")
    finally:
        await bank.close()

    # A certificate of the same CA that names no bank: closed at once, no answer.
    stranger = gw.client()
    await stranger.connect(ssl=context("bank120"))
    await asyncio.wait_for(stranger.closed.wait(), timeout=10)
    assert other_fp != fingerprint
    await stranger.close()

    # No client certificate: the handshake itself fails.
    bare = gw.client(timeout_s=10)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        await bare.connect(ssl=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")))
        await bare.request(bare.inquiry("pbb", NOP + "2026"))
    await bare.close()


async def test_bank_sim_speaks_tls_with_a_client_certificate(make_gateway, tmp_path):
    """`gateway bank-sim` against a TLS listener that identifies banks by certificate: with the CA and the
    bank's certificate it signs on; without TLS it gets nothing; a wrong file is named, before any connect."""
    ca_cert, ca_key = make_cert(tmp_path / "ca", "Test CA", ca=True)
    make_cert(tmp_path / "server", "localhost", ca_key, ca_cert.subject)
    bank_cert, _ = make_cert(tmp_path / "bank110", "bank 110", ca_key, ca_cert.subject)
    fingerprint = hashlib.sha256(bank_cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    banks = f'[[banks]]\ncode = "110"\nallow = ["127.0.0.1/32"]\nclient_cert_fingerprint = "{fingerprint}"\n'
    extra = (f'tls_cert = "{tmp_path}/server.pem"\ntls_key = "{tmp_path}/server.key"\n'
             f'tls_client_ca = "{tmp_path}/ca.pem"\n')
    gw = make_gateway(banks=banks, extra=extra)

    def sim(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gateway", "bank-sim", "echo", "--code", "001", "--timeout", "5",
                               "--config", str(gw.config_path), *args], capture_output=True, text=True, timeout=60)

    signed_on = await asyncio.to_thread(sim, "--tls-ca", f"{tmp_path}/ca.pem", "--tls-cert",
                                        f"{tmp_path}/bank110.pem", "--tls-key", f"{tmp_path}/bank110.key")
    assert signed_on.returncode == 0, signed_on.stderr
    assert "0810" in signed_on.stdout and "39 response code        00 (approved)" in signed_on.stdout
    plain = await asyncio.to_thread(sim)
    assert plain.returncode != 0 and "gateway: bank-sim:" in plain.stderr
    no_key = await asyncio.to_thread(sim, "--tls-ca", f"{tmp_path}/ca.pem", "--tls-cert", f"{tmp_path}/bank110.pem")
    assert no_key.returncode != 0
    assert no_key.stderr.strip() == "gateway: bank-sim: --tls-cert and --tls-key go together"
    missing = await asyncio.to_thread(sim, "--tls-ca", f"{tmp_path}/nothing.pem")
    assert missing.returncode != 0 and "gateway: bank-sim: TLS:" in missing.stderr
