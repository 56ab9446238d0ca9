"""Parses delivered v3 webhook bodies with LiveChat's official SDK
(lc-sdk-python's parse_webhook), as a receiver built on it would. Input on
stdin: [{"version": "3.6", "body": "<the body as received>",
"secret_key": "...", "optional": true|false}]. Fails on the first body the
SDK refuses, or that does not carry what it should; prints the count."""

import json
import sys
from dataclasses import fields

from livechat.webhooks.parser import parse_webhook


def main():
    deliveries = json.load(sys.stdin)
    for d in deliveries:
        body = json.loads(d["body"])
        try:
            parsed = parse_webhook(body, d["version"])
        except ValueError as error:
            sys.exit(f"parse_webhook refused a {d['version']} {body.get('action')} body: {error}: {d['body']}")
        if parsed.secret_key != d["secret_key"]:
            sys.exit(f"secret_key {parsed.secret_key!r}")
        declared = {f.name for f in fields(parsed.payload)}
        present = set(json.loads(d["body"])["payload"])
        required = {f.name for f in fields(parsed.payload) if f.default is not None}
        if d["optional"] and present != declared:
            sys.exit(f"{parsed.action}: every optional key should be there: {present}")
        if not d["optional"] and present != required:
            sys.exit(f"{parsed.action}: only the required keys should be there: {present}")
    print(json.dumps({"parsed": len(deliveries)}))


main()
