"""The one rule for what counts as a text: every entry point (training data, CLI, REST, UI) refuses
or drops the same ones.

A text is unusable when it is not a string, is not valid Unicode (a lone surrogate), or shows
nothing: only whitespace, control characters (NUL included) or zero-width characters.
"""

from __future__ import annotations

# code points that show nothing: C0 and C1 controls (NUL included), zero-width space/joiners, word
# joiner, byte-order mark; whitespace is covered by str.strip / \s
INVISIBLE_CODEPOINTS = (*range(0x20), *range(0x7F, 0xA0), 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)
_INVISIBLE = dict.fromkeys(INVISIBLE_CODEPOINTS)

# what Python's str.strip() removes (str.isspace), as code points: RE2's \s is only [\t\n\f\r ]
WHITESPACE_CODEPOINTS = (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                         0x2028, 0x2029, 0x202F, 0x205F, 0x3000)


def _char_class(codepoints) -> str:
    return "[" + "".join(f"\\x{{{c:x}}}" for c in sorted(set(codepoints))) + "]"


# the same rules as regular expressions (RE2 syntax, for pyarrow.compute over a whole column)
EDGE_SPACE_PATTERN = f"^{_char_class(WHITESPACE_CODEPOINTS)}|{_char_class(WHITESPACE_CODEPOINTS)}$"
BLANK_PATTERN = f"^{_char_class(WHITESPACE_CODEPOINTS + INVISIBLE_CODEPOINTS)}*$"


def text_problem(text: object) -> str | None:
    """What makes ``text`` unusable (``"is empty ..."``, ``"is not valid Unicode ..."``), or None."""
    if not isinstance(text, str):
        return f"is not a string ({type(text).__name__})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (valid JSON "\ud800", or undecodable argv bytes)
        return f"is not valid Unicode (an unpaired surrogate at character {exc.start + 1})"
    if not text.translate(_INVISIBLE).strip():
        return "is empty (nothing visible: only whitespace, control or zero-width characters)"
    return None


def blank_mask(texts):
    """A boolean numpy array: which of ``texts`` (an Arrow string array, or a pandas string Series)
    show nothing, in one vectorised pass (the column-wide form of :func:`text_problem`'s emptiness
    rule; whitespace counts as nothing, so it is the same before and after stripping)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, from_pandas=True)
    return pc.fill_null(pc.match_substring_regex(arr, BLANK_PATTERN), True).to_numpy(zero_copy_only=False)
