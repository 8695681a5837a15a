# Sphinx configuration of the byoc.certificates documentation site (make docs; docs/awx.md, "Release checks").
# Started from `antsibull-docs sphinx-init --use-current --squash-hierarchy byoc.certificates` (antsibull-docs
# 2.28.0); changed: project names, and no intersphinx, because the build runs offline and must stay warning-free
# (sphinx-build -W): references to ansible-core's docs render as plain text instead of links.
# pylint: disable=invalid-name,redefined-builtin

project = 'byoc.certificates'
copyright = 'byoc.certificates contributors'  # noqa: A001  (a Sphinx setting)
title = 'byoc.certificates: TLS certificate rotation for Genesys Cloud BYOC Premises'
html_short_title = 'byoc.certificates'

extensions = ['sphinx.ext.autodoc', 'sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
nitpicky = True
