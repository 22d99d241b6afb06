"""The spec reader: YAML text (read safely, with line and column kept) to a validated layer graph.
`yaml_source` reads the text, `expr` parses expressions (a whitelist, never eval), `parse` checks
entries against each kind's schema and builds the `graph`; `bundled` names the specs shipped with
the package (zoo:resnet18)."""
