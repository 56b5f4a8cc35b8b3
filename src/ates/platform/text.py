"""What counts as white space, for the rules about text every service checks."""

from __future__ import annotations

# The characters Python's str.isspace() (and so strip() and split()) takes for white
# space, spelled out for a regular expression. OpenAPI documents hold ECMA-262 patterns,
# whose \s is a different set: a pattern that must mean what Python checks says this.
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
