#!/usr/bin/python3
"""Validates a JSON document against a JSON schema (Debian's python3-jsonschema).
Usage: validate_json_schema.py SCHEMA DOCUMENT. Prints every error with its path; exit 1 if any."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1], encoding="utf-8"))
document = json.load(open(sys.argv[2], encoding="utf-8"))
validator_class = jsonschema.validators.validator_for(schema)
validator_class.check_schema(schema)
errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
for error in errors:
    print("/".join(str(p) for p in error.path) or "(root)", ":", error.message)
print(f"{len(errors)} schema errors")
sys.exit(1 if errors else 0)
