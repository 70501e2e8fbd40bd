"""Verifies a DKIM-signed message with dkimpy, for the tests of src/delivery/dkim.rs.

Usage: python3 dkim_verify.py MESSAGE_FILE DNS_NAME TXT_RECORD

Answers the key lookup for DNS_NAME with TXT_RECORD instead of asking DNS.
Exits 0 when the signature verifies, 1 when it does not, and 77 when dkimpy
(or PyNaCl, which it needs for Ed25519) is not installed.
"""

import sys

try:
    import dkim
    import nacl  # noqa: F401  (dkimpy verifies Ed25519 with it)
except ImportError as missing:
    print(f"skipped: pip install dkimpy pynacl ({missing})", file=sys.stderr)
    sys.exit(77)


def main() -> int:
    path, name, record = sys.argv[1:4]
    with open(path, "rb") as f:
        message = f.read()

    def dnsfunc(query, timeout=5):
        asked = query.decode() if isinstance(query, bytes) else query
        if asked.rstrip(".").lower() != name.lower():
            print(f"unexpected DNS query {asked!r}", file=sys.stderr)
            return None
        return record.encode()

    verifier = dkim.DKIM(message)
    try:
        ok = verifier.verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        print(f"not verified: {e}", file=sys.stderr)
        return 1
    if not ok:
        print("not verified: signature mismatch", file=sys.stderr)
        return 1
    signed = sorted({h.decode().lower() for h, _ in verifier.signed_headers})
    print(" ".join(signed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
