"""Drives every Configuration API webhook method of hookwire through
LiveChat's official SDK (lc-sdk-python), over HTTPS, for v3.5, v3.6 and
v3.7. Input on stdin: {"base_url": "127.0.0.1:PORT", "key": "...",
"receiver": "http://...", "prefix": "..."}; the test certificate is trusted
through SSL_CERT_FILE. Registers, for each version's Client ID, a license
webhook per action of the version's catalog (with all the additional data it
supports), and prints {"<version>": {"<action>": "<webhook id>"}}."""

import base64
import json
import sys

from livechat.configuration.base import ConfigurationApi

VERSIONS = ["3.5", "3.6", "3.7"]
CATALOG_SIZE = {"3.5": 39, "3.6": 38, "3.7": 38}


def expect(response, status, what):
    body = response.json()
    if response.status_code != status:
        sys.exit(f"{what}: expected {status}, got {response.status_code}: {body}")
    return body


def main():
    given = json.load(sys.stdin)
    registered = {}
    for version in VERSIONS:
        # Bearer for two versions, Basic (a PAT's account:token) for one.
        if version == "3.6":
            pat = base64.b64encode(f"account-id:{given['key']}".encode()).decode()
            token = f"Basic {pat}"
        else:
            token = f"Bearer {given['key']}"
        api = ConfigurationApi.get_client(
            token=token, version=version, base_url=given["base_url"], disable_logging=True
        )
        owner = f"{given['prefix']}-{version}"

        names = expect(api.list_webhook_names(version=version), 200, "list_webhook_names")
        if len(names) != CATALOG_SIZE[version]:
            sys.exit(f"{version}: {len(names)} webhook names")
        if {"action", "filters", "additional_data"} != set(names[0]):
            sys.exit(f"list_webhook_names item: {names[0]}")

        ids = {}
        for name in names:
            body = expect(
                api.register_webhook(
                    action=name["action"],
                    secret_key=f"secret-{version}",
                    url=f"{given['receiver']}/{version}",
                    additional_data=name["additional_data"] or None,
                    description=f"{name['action']} for the SDK test",
                    owner_client_id=owner,
                    type="license",
                ),
                200,
                f"register_webhook {name['action']}",
            )
            ids[name["action"]] = body["id"]

        # Two more of one action reach the limit; a fourth is refused.
        extra = []
        for _ in range(2):
            extra.append(
                expect(
                    api.register_webhook(
                        action="incoming_chat", secret_key="x", url=f"{given['receiver']}/spare",
                        owner_client_id=owner, type="license",
                    ),
                    200,
                    "register_webhook (spare)",
                )["id"]
            )
        refused = expect(
            api.register_webhook(
                action="incoming_chat", secret_key="x", url=f"{given['receiver']}/spare",
                owner_client_id=owner, type="license",
            ),
            400,
            "the fourth incoming_chat webhook",
        )
        if refused["error"]["type"] != "validation" or "3 webhooks" not in refused["error"]["message"]:
            sys.exit(f"the limit's error: {refused}")
        for spare in extra:
            if expect(api.unregister_webhook(id=spare, owner_client_id=owner), 200, "unregister_webhook") != {}:
                sys.exit("unregister_webhook answers {}")

        listed = expect(api.list_webhooks(owner_client_id=owner), 200, "list_webhooks")
        if sorted(w["id"] for w in listed) != sorted(ids.values()):
            sys.exit(f"list_webhooks: {listed}")
        for w in listed:
            keys = {"id", "url", "description", "action", "secret_key", "filters",
                    "owner_client_id", "type", "additional_data"}
            if set(w) != keys or w["secret_key"] != f"secret-{version}" or w["owner_client_id"] != owner:
                sys.exit(f"list_webhooks item: {w}")

        state = lambda: expect(
            api.get_license_webhooks_state(owner_client_id=owner), 200, "get_license_webhooks_state"
        )
        if state() != {"license_webhooks_enabled": False}:
            sys.exit("license webhooks start disabled")
        if expect(api.enable_license_webhooks(owner_client_id=owner), 200, "enable") != {}:
            sys.exit("enable_license_webhooks answers {}")
        if state() != {"license_webhooks_enabled": True}:
            sys.exit("enabled")
        if expect(api.disable_license_webhooks(owner_client_id=owner), 200, "disable") != {}:
            sys.exit("disable_license_webhooks answers {}")
        if state() != {"license_webhooks_enabled": False}:
            sys.exit("disabled")
        expect(api.enable_license_webhooks(owner_client_id=owner), 200, "enable again")

        unknown = expect(api.list_webhooks(owner_client_id=""), 400, "an empty owner_client_id")
        if unknown["error"]["type"] != "validation":
            sys.exit(f"validation error: {unknown}")
        registered[version] = ids
    print(json.dumps(registered))


main()
