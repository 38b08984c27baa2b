"""Bottle and agent definitions: Markdown files with YAML front matter."""
