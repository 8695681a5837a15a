# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""A small, neutral ACME (RFC 8555) client: ``jws`` (keys, JWS, EAB, key authorizations, problem documents) and
``client`` (``AcmeClient``, thread-safe, one per ACME server and account, shared by many threads)."""
