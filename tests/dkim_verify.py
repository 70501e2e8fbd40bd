"""Verifies a DKIM-signed message with dkimpy, for the tests of src/delivery/dkim.rs.

Usage: python3 dkim_verify.py MESSAGE_FILE DNS_NAME TXT_RECORD [DNS_NAME TXT_RECORD]...

Answers the key lookup for each DNS_NAME with its TXT_RECORD instead of
asking DNS. Verifies every DKIM-Signature of the message, one per key given.
Exits 0 when all verify, 1 when one does not, and 77 when dkimpy (or
PyNaCl, which it needs for Ed25519) is not installed.
"""

import sys

try:
    import dkim
    import nacl  # noqa: F401  (dkimpy verifies Ed25519 with it)
except ImportError as missing:
    print(f"skipped: pip install dkimpy pynacl ({missing})", file=sys.stderr)
    sys.exit(77)


def main() -> int:
    path, *pairs = sys.argv[1:]
    records = {name.lower(): record for name, record in zip(pairs[::2], pairs[1::2])}
    with open(path, "rb") as f:
        message = f.read()

    def dnsfunc(query, timeout=5):
        asked = query.decode() if isinstance(query, bytes) else query
        record = records.get(asked.rstrip(".").lower())
        if record is None:
            print(f"unexpected DNS query {asked!r}", file=sys.stderr)
            return None
        return record.encode()

    verifier = dkim.DKIM(message)
    signatures = [
        i for i, (name, _) in enumerate(verifier.headers) if name.lower() == b"dkim-signature"
    ]
    if len(signatures) != len(records):
        print(f"not verified: {len(signatures)} signatures for {len(records)} keys", file=sys.stderr)
        return 1
    signed = set()
    for idx in range(len(signatures)):
        try:
            ok = verifier.verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            print(f"not verified: {e}", file=sys.stderr)
            return 1
        if not ok:
            print(f"not verified: signature {idx} mismatch", file=sys.stderr)
            return 1
        signed |= {h.decode().lower() for h, _ in verifier.signed_headers}
    signed = sorted(signed)
    print(" ".join(signed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
