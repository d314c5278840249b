#!/usr/bin/env bash
# The test keys, made with OpenSSL (not Herald's code) and kept in the repository, so the test
# upstream and the private_key_jwt clients sign with keys and publish JWKs that Herald had no part
# in making: a bug shared by Herald's signer and verifier cannot hide. Test fixtures only; never
# use them anywhere else. Rerun to replace them: ./generate.sh
set -euo pipefail
cd "$(dirname "$0")"
for name in upstream-1 upstream-2 upstream-3; do
  openssl genrsa -traditional -out "$name.pem" 2048 2>/dev/null
done
for name in client stranger; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.pem"
done
# The public JWKs, with RFC 7638 thumbprints as kids, computed from OpenSSL's own printout.
python3 - <<'PY'
import base64, hashlib, json, re, subprocess

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def text(name, kind):
    return subprocess.run(["openssl", kind, "-in", f"{name}.pem", "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout

def hexblock(out, label):
    m = re.search(label + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", out)
    return bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))

def thumbprint(members):
    canon = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(canon.encode()).digest())

for name in ["upstream-1", "upstream-2", "upstream-3"]:
    out = text(name, "rsa")
    n = hexblock(out, "modulus").lstrip(b"\0")
    e = int(re.search(r"publicExponent: (\d+)", out).group(1))
    e = e.to_bytes((e.bit_length() + 7) // 8, "big")
    jwk = {"e": b64(e), "kty": "RSA", "n": b64(n)}
    jwk = {"kty": "RSA", "kid": thumbprint(jwk), "use": "sig", "alg": "RS256",
           "n": jwk["n"], "e": jwk["e"]}
    json.dump(jwk, open(f"{name}.jwk.json", "w"), indent=2)

for name in ["client", "stranger"]:
    out = text(name, "ec")
    pub = hexblock(out, "pub")
    assert pub[0] == 4 and len(pub) == 65, name
    jwk = {"crv": "P-256", "kty": "EC", "x": b64(pub[1:33]), "y": b64(pub[33:])}
    jwk = {"kty": "EC", "kid": thumbprint(jwk), "use": "sig", "alg": "ES256", "crv": "P-256",
           "x": jwk["x"], "y": jwk["y"]}
    json.dump(jwk, open(f"{name}.jwk.json", "w"), indent=2)
PY
# DER for the jsonwebtoken crate (built without PEM support): PKCS#1 for RSA, PKCS#8 for EC.
for name in upstream-1 upstream-2 upstream-3; do
  openssl rsa -in "$name.pem" -traditional -outform DER -out "$name.der" 2>/dev/null
done
for name in client stranger; do
  openssl pkcs8 -topk8 -nocrypt -in "$name.pem" -outform DER -out "$name.der"
done
echo "made: $(ls *.pem *.der *.jwk.json | tr '\n' ' ')"
