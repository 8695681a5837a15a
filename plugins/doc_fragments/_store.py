# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by certificate_store and certificate_store_info (argspec: module_utils/_store/document.py).
    DOCUMENTATION = r"""
options:
  backend:
    description:
      - Where the store keeps its data.
      - V(filesystem) keeps one directory per group under O(path) (directories mode V(0700), files mode V(0600)).
      - V(s3) keeps one object per group in an S3 bucket (boto3), see O(s3).
    type: str
    choices: [filesystem, s3]
    default: filesystem
  path:
    description:
      - The store's root directory on the controller, for O(backend=filesystem).
      - If not set, the environment variable E(BYOC_STORE_PATH) is used.
    type: path
  s3:
    description:
      - Connection to the S3 bucket, for O(backend=s3).
    type: dict
    suboptions:
      bucket:
        description: The bucket name. It must exist.
        type: str
        required: true
      prefix:
        description: A key prefix under which the groups are kept, for example V(certificates/prod/).
        type: str
        default: ''
      endpoint_url:
        description:
          - An S3-compatible endpoint instead of AWS, for example a MinIO or moto server URL.
          - If not set, the environment variable E(BYOC_STORE_S3_ENDPOINT_URL) is used.
        type: str
      region:
        description:
          - The AWS region. If not set, E(AWS_REGION) or E(AWS_DEFAULT_REGION) is used.
        type: str
      access_key:
        description:
          - The AWS access key ID. If not set, E(AWS_ACCESS_KEY_ID) is used, then boto3's usual credential chain.
        type: str
      secret_key:
        description:
          - The AWS secret access key. If not set, E(AWS_SECRET_ACCESS_KEY) is used.
        type: str
      session_token:
        description:
          - An AWS session token. If not set, E(AWS_SESSION_TOKEN) is used.
        type: str
      validate_certs:
        description: Verify the TLS certificate of the S3 endpoint. Only set V(false) in a lab.
        type: bool
        default: true
      ca_path:
        description: A PEM file with the CA certificates that sign the S3 endpoint's TLS certificate.
        type: path
  group:
    description:
      - The certificate group whose data is read or written.
      - 1 to 128 letters, digits, V(.), V(_) or V(-), starting with a letter or digit.
    type: str
    required: true
  passphrase:
    description:
      - The passphrase that encrypts private keys at rest (at least 12 characters).
      - Take it from Ansible Vault or an AWX credential. If not set, the environment variable
        E(BYOC_STORE_PASSPHRASE) is used.
      - Keys are stored as PKCS#8 PEM encrypted with this passphrase; the same passphrase decrypts them with
        community.crypto (C(privatekey_passphrase), C(account_key_passphrase)) or openssl.
    type: str
"""
