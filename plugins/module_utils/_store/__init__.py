# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The certificate store: one JSON document per certificate group, behind one interface, two backends.

``base.Store`` is the interface (read, atomic write, lock); ``filesystem.FilesystemStore`` and ``s3.S3Store``
implement it; ``document`` holds the document model (current/previous material, accounts, ARI data, backoff,
last order URL) and the encryption of private keys at rest; ``open_store`` builds a backend from module options.
"""
