#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Makes a PKCS#12 file with pyca/cryptography (python3-cryptography, Debian's 38.0):
# serialize_key_and_certificates with its encryption builder. Used by
# tests/interop/producers_test.cpp.
#   pyca_pkcs12.py MODE OUT.p12 CA.pem    password in $P11VAULT_TEST_PW
# MODE: best (BestAvailableEncryption), aes-sha256 / 3des-sha1 (encryption_builder:
# PBESv2SHA256AndAES256CBC with an HMAC-SHA256 MAC, PBESv1SHA1And3KeyTripleDESCBC with a
# SHA-1 MAC), none (NoEncryption): an RSA-2048 leaf key and its certificate, issued by an
# EC P-256 CA; chain: the same with the CA certificate in `cas`; ca: the CA key and its
# self-signed certificate; key-only: the leaf key without a certificate. CA.pem receives
# the CA certificate.
import datetime, os, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

mode, out, ca_pem = sys.argv[1], sys.argv[2], sys.argv[3]
password = os.environ["P11VAULT_TEST_PW"].encode()
now = datetime.datetime.now(datetime.timezone.utc)

def certificate(subject_key, subject, issuer_key, issuer, ca):
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())

ca_key = ec.generate_private_key(ec.SECP256R1())
ca = certificate(ca_key, "pyca CA", ca_key, "pyca CA", True)
open(ca_pem, "wb").write(ca.public_bytes(serialization.Encoding.PEM))
leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
leaf = certificate(leaf_key, "pyca leaf", ca_key, "pyca CA", False)

def builder():
    return serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)

# Built only for the mode asked: BestAvailableEncryption refuses an empty password.
encryption = {
    "best": lambda: serialization.BestAvailableEncryption(password),
    "aes-sha256": lambda: builder().key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
    .hmac_hash(hashes.SHA256()).build(password),
    "3des-sha1": lambda: builder().key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
    .hmac_hash(hashes.SHA1()).build(password),
    "none": lambda: serialization.NoEncryption(),
}
name = b"pyca " + mode.encode()
if mode == "chain":
    data = pkcs12.serialize_key_and_certificates(name, leaf_key, leaf, [ca], encryption["aes-sha256"]())
elif mode == "ca":
    data = pkcs12.serialize_key_and_certificates(b"pyca ca", ca_key, ca, None, encryption["aes-sha256"]())
elif mode == "key-only":
    data = pkcs12.serialize_key_and_certificates(name, leaf_key, None, None, encryption["aes-sha256"]())
else:
    data = pkcs12.serialize_key_and_certificates(name, leaf_key, leaf, None, encryption[mode]())
open(out, "wb").write(data)
