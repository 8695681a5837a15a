# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
"""

    # Modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
"""

    # One fragment per action group in meta/runtime.yml. Every module of a group accepts the group's common
    # options (those of the connection fragment named like the group, for example _store for the store group),
    # so that one module_defaults entry for the group works for all of its modules.
    ACTIONGROUP_DNS = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/byoc.certificates.dns) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - byoc.certificates.dns
"""

    ACTIONGROUP_GENESYS = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/byoc.certificates.genesys) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - byoc.certificates.genesys
"""

    ACTIONGROUP_AUDIOCODES = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/byoc.certificates.audiocodes) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - byoc.certificates.audiocodes
"""

    ACTIONGROUP_RIBBON = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/byoc.certificates.ribbon) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - byoc.certificates.ribbon
"""

    ACTIONGROUP_STORE = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/byoc.certificates.store) in C(module_defaults) to set defaults for this module.
      - Every module of the group accepts the store options (O(backend), O(path), O(s3), O(group), O(passphrase)),
        so they can be set once for the group.
    support: full
    membership:
      - byoc.certificates.store
"""

    ACTIONGROUP_RENEWAL = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/byoc.certificates.renewal) in C(module_defaults) to set defaults for this module, for example
        the renewal fractions of a whole play.
      - This module reads no store, so it is not in the C(byoc.certificates.store) group and takes none of its options.
    support: full
    membership:
      - byoc.certificates.renewal
"""

    ACTIONGROUP_VERIFY = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/byoc.certificates.verify) in C(module_defaults) to set defaults for this module, for example the
        O(nameservers) and O(timeout) of every probe of a play.
    support: full
    membership:
      - byoc.certificates.verify
"""

    ACTIONGROUP_PLAN = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/byoc.certificates.plan) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - byoc.certificates.plan
"""

    ACTIONGROUP_ISSUE = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/byoc.certificates.issue) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - byoc.certificates.issue
"""

    ACTIONGROUP_REPORT = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/byoc.certificates.report) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - byoc.certificates.report
"""
