#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: dns01_record
short_description: Add or remove ACME DNS-01 TXT values and wait until every authoritative nameserver serves them
version_added: 0.1.0
description:
  - Adds or removes TXT values at an C(_acme-challenge) name through one of five DNS providers
    (RFC 2136 dynamic update with TSIG, Amazon Route 53, the PowerDNS API, Cloudflare, Azure DNS).
  - Multi-value safe. O(state=present) adds the missing values and keeps every other value at the name;
    O(state=absent) removes exactly the given values and keeps the others. Removing the last value deletes the record set.
  - Optionally follows CNAME delegation (acme-dns style) and manages the TXT record at the final target.
  - Optionally waits until every authoritative nameserver of the zone serves the values (or none serves them),
    asking each server directly over TCP without recursion. While waiting, the action plugin prints progress.
  - Compares decoded TXT values, never their quoting, so a second run with the same values reports no change.
  - Checks everything it can before the first write, including the O(nameservers) (resolved) and the O(rfc2136.server)
    name. When a step after a successful write fails, it removes the values it added (keeping values that others
    wrote meanwhile), or says exactly what the record holds now (RV(txt_now)).
  - Credentials are stripped of surrounding whitespace (a trailing newline from a vault block scalar or an environment
    variable); a credential with whitespace, control or non-ASCII characters inside is refused without being shown.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._attributes
  - byoc.certificates._attributes.ACTIONGROUP_DNS
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is written and nothing is waited for; RV(txt_after) is the predicted content.
  diff_mode:
    support: full
  idempotent:
    support: full
requirements:
  - dnspython >= 2.0 (for O(provider=rfc2136), O(follow_cname) and O(wait))
  - boto3 (for O(provider=route53))
options:
  provider:
    description: The DNS provider that holds the zone. Its settings go in the option of the same name.
    type: str
    required: true
    choices: [rfc2136, route53, powerdns, cloudflare, azure]
  record:
    description:
      - The full name of the TXT record, for example C(_acme-challenge.sbc1.example.test). A trailing dot is optional.
    type: str
    required: true
  value:
    description:
      - The TXT values to add or remove, as the ACME server expects them (unquoted).
      - Each entry must be a non-empty string. Values longer than 255 bytes are split into several character strings.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) adds the values that are missing and keeps all others.
      - V(absent) removes exactly these values and keeps all others.
    type: str
    choices: [present, absent]
    default: present
  zone:
    description:
      - The zone that holds the record (of the final name when O(follow_cname=true)).
      - When omitted, V(rfc2136) asks the update server for the SOA, walking up from the name; the API providers list
        their zones and take the longest one that the name falls under.
    type: str
  ttl:
    description: TTL of the TXT record set in seconds.
    type: int
    default: 60
  follow_cname:
    description:
      - Follow CNAMEs from O(record), asking O(resolver), and manage the TXT record at the final target
        (delegation of C(_acme-challenge) to a dedicated challenge zone). Loops and chains longer than 8 are errors.
    type: bool
    default: false
  resolver:
    description:
      - DNS resolvers (C(addr), C(addr:port), C([ipv6]:port)) used to follow CNAMEs and to discover and resolve the
        zone's nameservers. Defaults to the controller's system resolver.
    type: list
    elements: str
  wait:
    description:
      - After writing, poll every authoritative nameserver of the zone directly (TCP, no recursion) until all of them
        serve the values (V(present)) or none of them serves them (V(absent)).
      - For Route 53 the module first waits until the change is C(INSYNC).
    type: bool
    default: false
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 300
  wait_interval:
    description: Seconds between two polling rounds.
    type: float
    default: 2
  nameservers:
    description:
      - Poll exactly these servers (C(addr), C(addr:port), C([ipv6]:port)) instead of the zone's NS records. Use this
        for internal DNS, split horizon, hidden primaries or servers on other ports.
    type: list
    elements: str
  nameserver_port:
    description: Port used for nameservers given without a port and for the discovered nameservers.
    type: int
    default: 53
  on_wait_timeout:
    description:
      - V(fail) fails the task when the wait times out, naming the servers still behind.
      - V(return) returns normally with RV(propagated=false).
    type: str
    choices: [fail, return]
    default: fail
  rfc2136:
    description: Settings for O(provider=rfc2136) (RFC 2136 dynamic update).
    type: dict
    suboptions:
      server:
        description: Address or name of the primary server that accepts updates.
        type: str
        required: true
      port:
        description: Port of the update server.
        type: int
        default: 53
      key_name:
        description: Name of the TSIG key. Leave unset (with O(rfc2136.key_secret)) for unsigned updates.
        type: str
      key_secret:
        description:
          - The TSIG secret, base64 as written by C(tsig-keygen).
          - Defaults to the environment variable E(BYOC_TSIG_KEY_SECRET).
        type: str
      key_algorithm:
        description: TSIG algorithm.
        type: str
        default: hmac-sha256
        choices: [hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha256-128, hmac-sha384, hmac-sha384-192,
                  hmac-sha512, hmac-sha512-256]
      protocol:
        description: Transport for the update.
        type: str
        default: tcp
        choices: [tcp, udp]
      timeout:
        description: Seconds to wait for each answer from the update server.
        type: float
        default: 10
  route53:
    description: Settings for O(provider=route53).
    type: dict
    suboptions:
      access_key:
        description: AWS access key ID. Defaults to E(AWS_ACCESS_KEY_ID); when unset, the normal AWS credential chain is used.
        type: str
      secret_key:
        description: AWS secret access key. Defaults to E(AWS_SECRET_ACCESS_KEY).
        type: str
      session_token:
        description: AWS session token for temporary credentials. Defaults to E(AWS_SESSION_TOKEN).
        type: str
      region:
        description: AWS region for the API client. Defaults to E(AWS_DEFAULT_REGION), else C(us-east-1).
        type: str
      endpoint_url:
        description: Alternative Route 53 endpoint (for example a test server). Defaults to E(AWS_ENDPOINT_URL).
        type: str
      hosted_zone_id:
        description: The hosted zone ID. When set, no zone lookup is made.
        type: str
      private_zone:
        description: Only consider private (V(true)) or public (V(false)) hosted zones, for split-horizon setups.
        type: bool
  powerdns:
    description: Settings for O(provider=powerdns) (PowerDNS Authoritative HTTP API).
    type: dict
    suboptions:
      url:
        description: API base URL, for example C(http://pdns.example.test:8081/api/v1).
        type: str
        required: true
      api_key:
        description: The API key (C(X-API-Key)). Defaults to E(PDNS_API_KEY).
        type: str
      server_id:
        description: The PowerDNS server ID.
        type: str
        default: localhost
      validate_certs:
        description: Verify the API's TLS certificate.
        type: bool
        default: true
      ca_path:
        description: PEM file with the CA certificates to trust for the API.
        type: path
  cloudflare:
    description: Settings for O(provider=cloudflare).
    type: dict
    suboptions:
      api_token:
        description: A Cloudflare API token with DNS edit permission on the zone. Defaults to E(CLOUDFLARE_API_TOKEN).
        type: str
      api_url:
        description: API base URL.
        type: str
        default: https://api.cloudflare.com/client/v4
      validate_certs:
        description: Verify the API's TLS certificate.
        type: bool
        default: true
      ca_path:
        description: PEM file with the CA certificates to trust for the API.
        type: path
  azure:
    description:
      - Settings for O(provider=azure) (Azure DNS public zones through Azure Resource Manager, api-version 2018-05-01).
      - The identity needs the role C(DNS Zone Contributor) on the zone or its resource group.
      - Writes are read-modify-write of the TXT record set under its etag (C(If-Match), C(If-None-Match) to create);
        when another writer changed the set in between (HTTP 412), the set is read again and the change re-applied,
        at most 5 times. HTTP 429 is retried after C(Retry-After).
    type: dict
    suboptions:
      subscription_id:
        description: The subscription that holds the zone (a GUID). Defaults to E(AZURE_SUBSCRIPTION_ID).
        type: str
        required: true
      resource_group:
        description:
          - The resource group of the zone. When omitted, the zones of the whole subscription are listed and the
            resource group is taken from the zone found.
        type: str
      auth:
        description:
          - V(client_secret) gets a token from Microsoft Entra ID with O(azure.tenant_id), O(azure.client_id) and
            O(azure.client_secret) (client credentials flow).
          - V(managed_identity) gets a token from the managed identity endpoint of the Azure resource the controller
            runs on; O(azure.client_id) picks a user-assigned identity.
        type: str
        choices: [client_secret, managed_identity]
        default: client_secret
      tenant_id:
        description: The Microsoft Entra tenant (GUID or domain). Defaults to E(AZURE_TENANT_ID).
        type: str
      client_id:
        description: The application (client) ID of the service principal, or of a user-assigned managed identity.
          Defaults to E(AZURE_CLIENT_ID).
        type: str
      client_secret:
        description: The service principal's client secret. Defaults to E(AZURE_CLIENT_SECRET).
        type: str
      resource_manager_url:
        description:
          - The Azure Resource Manager endpoint. The token scope is this URL followed by C(/.default).
          - For sovereign clouds, for example C(https://management.chinacloudapi.cn) or
            C(https://management.usgovcloudapi.net).
        type: str
        default: https://management.azure.com
      authority_url:
        description:
          - The Microsoft Entra ID authority host, for O(azure.auth=client_secret).
          - For sovereign clouds, for example C(https://login.chinacloudapi.cn) or C(https://login.microsoftonline.us).
        type: str
        default: https://login.microsoftonline.com
      managed_identity_url:
        description: The managed identity token endpoint, for O(azure.auth=managed_identity).
        type: str
        default: http://169.254.169.254/metadata/identity/oauth2/token
      validate_certs:
        description: Verify the TLS certificates of the endpoints.
        type: bool
        default: true
      ca_path:
        description: PEM file with the CA certificates to trust for the endpoints.
        type: path
notes:
  - The module runs on the controller and talks to the DNS provider from there.
  - With O(wait=true) and outside check mode, the action plugin runs the module in rounds of up to 10 seconds and
    prints which nameservers still lag behind after each round.
  - See docs/dns01_record.md in the collection for delegation, split horizon and internal DNS.
seealso:
  - name: RFC 2136 (dynamic update)
    description: DNS UPDATE, used by O(provider=rfc2136).
    link: https://www.rfc-editor.org/rfc/rfc2136
  - name: RFC 8555 section 8.4
    description: The ACME DNS-01 challenge.
    link: https://www.rfc-editor.org/rfc/rfc8555#section-8.4
"""

EXAMPLES = r"""
- name: Publish the challenge on BIND with TSIG and wait for both nameservers
  byoc.certificates.dns01_record:
    provider: rfc2136
    record: _acme-challenge.sbc1.example.test
    value: "{{ challenge_value }}"
    rfc2136:
      server: 192.0.2.53
      key_name: acme-key
      key_secret: "{{ vault_tsig_secret }}"
    wait: true
    nameservers: [192.0.2.53, 192.0.2.54]

- name: Delegated challenge (CNAME into an acme-dns zone), discovering the nameservers
  byoc.certificates.dns01_record:
    provider: rfc2136
    record: _acme-challenge.sbc1.corp.test
    value: ["{{ challenge_value }}"]
    follow_cname: true
    resolver: ["10.0.0.2"]
    rfc2136:
      server: 10.0.0.53
      key_name: acme-key
    wait: true

- name: Route 53, credentials from the environment (AWX credential)
  byoc.certificates.dns01_record:
    provider: route53
    record: _acme-challenge.sbc2.example.com
    value: ["{{ challenge_value }}"]
    route53: {}
    wait: true

- name: Clean up only our value with PowerDNS
  byoc.certificates.dns01_record:
    provider: powerdns
    record: _acme-challenge.sbc1.example.test
    value: ["{{ challenge_value }}"]
    state: absent
    powerdns:
      url: https://pdns.example.test:8081/api/v1
      ca_path: /etc/pki/internal-ca.pem

- name: Azure DNS, service principal from the AZURE_* environment variables
  byoc.certificates.dns01_record:
    provider: azure
    record: _acme-challenge.sbc4.example.net
    value: ["{{ challenge_value }}"]
    azure:
      resource_group: rg-dns
    wait: true

- name: Azure DNS from a VM with a managed identity, in Azure China
  byoc.certificates.dns01_record:
    provider: azure
    record: _acme-challenge.sbc5.example.cn
    value: ["{{ challenge_value }}"]
    azure:
      auth: managed_identity
      subscription_id: "{{ azure_subscription_id }}"
      resource_manager_url: https://management.chinacloudapi.cn

- name: Cloudflare with module_defaults for the whole dns group
  module_defaults:
    group/byoc.certificates.dns:
      provider: cloudflare
      cloudflare:
        api_token: "{{ vault_cloudflare_token }}"
  byoc.certificates.dns01_record:
    record: _acme-challenge.sbc3.example.org
    value: ["{{ challenge_value }}"]
"""

RETURN = r"""
record:
  description: The name actually managed (after following CNAMEs), without trailing dot.
  returned: success
  type: str
  sample: sbc1.acme-dns.corp.test
zone:
  description: The zone the record was written in.
  returned: success
  type: str
  sample: example.test
cname_chain:
  description: Every name visited from O(record) to RV(record); just O(record) when no CNAME was followed.
  returned: success
  type: list
  elements: str
  sample: [_acme-challenge.sbc1.corp.test, sbc1.acme-dns.corp.test]
txt_before:
  description: The TXT values at RV(record) before the task (decoded).
  returned: success
  type: list
  elements: str
  sample: [old-token]
txt_after:
  description: The TXT values after the task (predicted in check mode).
  returned: success
  type: list
  elements: str
  sample: [old-token, new-token]
added:
  description: Values that were (or in check mode would be) added.
  returned: success
  type: list
  elements: str
  sample: [new-token]
removed:
  description: Values that were (or in check mode would be) removed.
  returned: success
  type: list
  elements: str
  sample: []
propagated:
  description: Whether every polled nameserver serves the values (present) or none serves them (absent); null when O(wait=false) or in check mode.
  returned: success
  type: bool
  sample: true
wait_seconds:
  description: Seconds spent polling the nameservers.
  returned: success
  type: float
  sample: 4.2
txt_now:
  description:
    - Only in a failed result, when a write stopped half way or a step after it failed. The TXT values the provider
      holds at RV(record) now, read back after the failure (null when they could not be read).
  returned: failure after a write
  type: list
  elements: str
  sample: [other-token]
nameserver_status:
  description: The last answer of every polled nameserver.
  returned: success
  type: list
  elements: dict
  contains:
    server:
      description: C(addr:port) of the nameserver.
      type: str
      returned: always
      sample: 192.0.2.54:53
    serving:
      description: The TXT values it served.
      type: list
      elements: str
      returned: always
      sample: [old-token]
    ok:
      description: Whether it satisfies the wait.
      type: bool
      returned: always
      sample: false
    error:
      description: Why it could not be asked, or null.
      type: str
      returned: always
      sample: null
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module
from ansible_collections.byoc.certificates.plugins.module_utils._dns.record import PROVIDERS, run
from ansible_collections.byoc.certificates.plugins.module_utils._dns.rfc2136 import ALGORITHMS


def argument_spec() -> dict:
    return dict(
        provider=dict(type="str", required=True, choices=list(PROVIDERS)),
        record=dict(type="str", required=True),
        value=dict(type="list", elements="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        zone=dict(type="str"),
        ttl=dict(type="int", default=60),
        follow_cname=dict(type="bool", default=False),
        resolver=dict(type="list", elements="str"),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        wait_interval=dict(type="float", default=2),
        nameservers=dict(type="list", elements="str"),
        nameserver_port=dict(type="int", default=53),
        on_wait_timeout=dict(type="str", default="fail", choices=["fail", "return"]),
        rfc2136=dict(type="dict", options=dict(
            server=dict(type="str", required=True),
            port=dict(type="int", default=53),
            key_name=dict(type="str"),
            key_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["BYOC_TSIG_KEY_SECRET"])),
            key_algorithm=dict(type="str", default="hmac-sha256", choices=list(ALGORITHMS)),
            protocol=dict(type="str", default="tcp", choices=["tcp", "udp"]),
            timeout=dict(type="float", default=10),
        )),
        route53=dict(type="dict", options=dict(
            access_key=dict(type="str", no_log=False, fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
            secret_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
            session_token=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
            region=dict(type="str", fallback=(env_fallback, ["AWS_DEFAULT_REGION"])),
            endpoint_url=dict(type="str", fallback=(env_fallback, ["AWS_ENDPOINT_URL"])),
            hosted_zone_id=dict(type="str"),
            private_zone=dict(type="bool"),
        )),
        powerdns=dict(type="dict", options=dict(
            url=dict(type="str", required=True),
            api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["PDNS_API_KEY"])),
            server_id=dict(type="str", default="localhost"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        )),
        cloudflare=dict(type="dict", options=dict(
            api_token=dict(type="str", no_log=True, fallback=(env_fallback, ["CLOUDFLARE_API_TOKEN"])),
            api_url=dict(type="str", default="https://api.cloudflare.com/client/v4"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        )),
        azure=dict(type="dict", options=dict(
            subscription_id=dict(type="str", required=True, fallback=(env_fallback, ["AZURE_SUBSCRIPTION_ID"])),
            resource_group=dict(type="str"),
            auth=dict(type="str", default="client_secret", choices=["client_secret", "managed_identity"]),
            tenant_id=dict(type="str", fallback=(env_fallback, ["AZURE_TENANT_ID"])),
            client_id=dict(type="str", fallback=(env_fallback, ["AZURE_CLIENT_ID"])),
            client_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["AZURE_CLIENT_SECRET"])),
            resource_manager_url=dict(type="str", default="https://management.azure.com"),
            authority_url=dict(type="str", default="https://login.microsoftonline.com"),
            managed_identity_url=dict(type="str", default="http://169.254.169.254/metadata/identity/oauth2/token"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        )),
    )


def main() -> None:
    module = ByocModule(
        argument_spec=argument_spec(),
        required_if=[("provider", name, [name]) for name in PROVIDERS],
        supports_check_mode=True,
    )
    run_module(module, lambda m: run(m.params, check_mode=m.check_mode, want_diff=m._diff))


if __name__ == "__main__":
    main()
