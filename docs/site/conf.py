# Sphinx settings of the collection's documentation site (make docs, hack/build-docs).
# Offline: no intersphinx; the few ansible-core pages the generated reference points at are
# named in external.rst, with links to their published versions.
project = "cloudshift.migrate"
copyright = "cloudshift.migrate engineers"
title = "cloudshift.migrate documentation"
html_short_title = "cloudshift.migrate"
extensions = ["sphinx_antsibull_ext", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3
myst_enable_extensions = ["tasklist"]
pygments_style = "ansible"
highlight_language = "YAML+Jinja"
html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
default_role = "any"
nitpicky = True
# Pages outside the toctrees' reach (copied as files, linked from the guides).
exclude_patterns = []
suppress_warnings = []
# A site of its own: no links to Ansible's site in the top bar, no advertising.
html_theme_options = {"topbar_links": {}, "show_extranav": False, "show_rtd_ethical_ads": False}
