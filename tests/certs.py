"""A throw-away PKI for the TLS tests: a CA, a server certificate for 127.0.0.1/localhost, a
client certificate, and a key that matches nothing. Written as PEM files into a directory."""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path, key):
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def _write_cert(path, *certs):
    with open(path, "wb") as f:
        for c in certs:
            f.write(c.public_bytes(serialization.Encoding.PEM))


def _issue(subject_key, cn, issuer_key, issuer_name, *, ca=False, server=False, client=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn))
         .issuer_name(issuer_name)
         .public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_pki(directory, server_key_type="rsa"):
    """Writes the files and returns a dict of their paths."""
    os.makedirs(directory, exist_ok=True)
    p = {k: os.path.join(directory, k + ".pem") for k in
         ("ca", "server_cert", "server_key", "client_cert", "client_key", "other_key",
          "other_ca", "rogue_client_cert", "rogue_client_key")}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(ca_key, "ferrocorn test CA", ca_key, _name("ferrocorn test CA"), ca=True)
    _write_cert(p["ca"], ca)
    if server_key_type == "rsa":
        server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        server_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(p["server_key"], server_key)
    _write_cert(p["server_cert"], _issue(server_key, "localhost", ca_key, ca.subject, server=True))
    client_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(p["client_key"], client_key)
    _write_cert(p["client_cert"], _issue(client_key, "client", ca_key, ca.subject, client=True))
    _write_key(p["other_key"], ec.generate_private_key(ec.SECP256R1()))
    # A second CA and a client it signed: valid certificate, wrong issuer.
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _issue(other_ca_key, "other CA", other_ca_key, _name("other CA"), ca=True)
    _write_cert(p["other_ca"], other_ca)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(p["rogue_client_key"], rogue_key)
    _write_cert(p["rogue_client_cert"], _issue(rogue_key, "rogue", other_ca_key, other_ca.subject,
                                               client=True))
    return p
