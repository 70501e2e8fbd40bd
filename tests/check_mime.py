"""Checks messages with Python's email package, a MIME parser independent of
necmail's own code. Used by the integration tests.

    python3 tests/check_mime.py FILE.eml...

For each file it asserts the structure every campaign message must have and
prints one JSON object per line with the decoded subject, recipient, links
and both parts' text, for the Rust test to compare.
"""
import email
import json
import sys
from email import policy

REQUIRED = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Unsubscribe",
            "List-Unsubscribe-Post", "List-Id", "Precedence", "Auto-Submitted", "Feedback-ID"]

for path in sys.argv[1:]:
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=policy.default)
    missing = [h for h in REQUIRED if msg[h] is None]
    assert not missing, f"{path}: missing headers {missing}"
    assert msg.get_content_type() == "multipart/alternative", f"{path}: {msg.get_content_type()}"
    parts = list(msg.iter_parts())
    types = [p.get_content_type() for p in parts]
    assert types == ["text/plain", "text/html"], f"{path}: parts are {types}"
    defects = [str(d) for part in msg.walk() for d in part.defects]
    assert not defects, f"{path}: defects {defects}"
    print(json.dumps({
        "subject": str(msg["Subject"]),
        "to": str(msg["To"]),
        "message_id": str(msg["Message-ID"]),
        "list_unsubscribe": str(msg["List-Unsubscribe"]),
        "list_unsubscribe_post": str(msg["List-Unsubscribe-Post"]),
        "list_id": str(msg["List-Id"]),
        "text": parts[0].get_content(),
        "html": parts[1].get_content(),
    }))
