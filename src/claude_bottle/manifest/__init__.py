"""Bottle and agent definitions: Markdown files with YAML front matter.

``model`` (value types) · ``loader.resolve_definitions`` (where files come from; the entry point) ·
``parse`` (one file to one definition, strict schema) · ``nodes`` (front matter, typed YAML reads with
``file:line`` errors) · ``checks`` (pure value checks the proxy and git-gate may reuse) · ``builtins``
(``default`` bottle, ``claude`` agent) · ``secrets.collect_secret_values`` (values at ``up``) ·
``describe`` (``info``, values masked). Decision: ``docs/decisions/0002-manifests.md``.
"""
