//! The chunk-extension grammar (RFC 9112 section 7.1.1), one byte at a time:
//!
//! ```text
//! chunk-ext     = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val = token / quoted-string
//! ```
//!
//! with `token` and `quoted-string` from RFC 9110 sections 5.6.2 and 5.6.4. Extensions carry
//! nothing we use, but a front proxy that reads a malformed one differently (stops at a stray
//! `"`, or takes `a b` as two items) can frame the body differently from us; Gunicorn refuses
//! everything outside the grammar, and so do we. BWS before the first `;` belongs to the
//! chunk-size line and is handled by the decoder; nothing may follow the last extension, not
//! even whitespace, as in the grammar and in Gunicorn.

use crate::chars::{FIELD_VALUE, TCHAR};

/// Where a chunk-extension reader is, entered on the first `;` of a chunk-size line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtState {
    /// After a `;`: optional BWS, then the first byte of a name.
    NameStart,
    /// Inside a name. The line may end here.
    Name,
    /// BWS after a name: only `=`, `;` or more BWS may follow.
    AfterName,
    /// After `=`: optional BWS, then a token or a quoted string.
    ValueStart,
    /// Inside a token value. The line may end here.
    Token,
    /// Inside a quoted string, after its opening `"`.
    Quoted,
    /// After a `\` inside a quoted string.
    QuotedEscape,
    /// Right after the closing `"`. The line may end here.
    Closed,
    /// BWS after a value: only `;` or more BWS may follow.
    AfterValue,
}

impl ExtState {
    /// The state after byte `b`, or `None` if `b` cannot come next. The CR ending the line
    /// is not a byte of the grammar: the caller checks [`ExtState::may_end`] when it sees one.
    pub(crate) fn next(self, b: u8) -> Option<ExtState> {
        use ExtState::*;
        let ws = b == b' ' || b == b'\t';
        let tchar = TCHAR[usize::from(b)];
        Some(match self {
            NameStart if ws => NameStart,
            NameStart | Name if tchar => Name,
            Name | AfterName if ws => AfterName,
            Name | AfterName if b == b'=' => ValueStart,
            ValueStart if ws => ValueStart,
            ValueStart if b == b'"' => Quoted,
            ValueStart | Token if tchar => Token,
            Token | Closed | AfterValue if ws => AfterValue,
            Name | AfterName | Token | Closed | AfterValue if b == b';' => NameStart,
            Quoted if b == b'"' => Closed,
            Quoted if b == b'\\' => QuotedEscape,
            // qdtext and quoted-pair: HTAB, SP, VCHAR, obs-text (`"` and `\` handled above).
            Quoted | QuotedEscape if FIELD_VALUE[usize::from(b)] => Quoted,
            _ => return None,
        })
    }

    /// Whether the chunk-size line may end (CRLF) in this state: after a complete name or
    /// value, never after `;`, `=`, BWS or inside a quoted string.
    pub(crate) fn may_end(self) -> bool {
        matches!(self, ExtState::Name | ExtState::Token | ExtState::Closed)
    }
}

/// Whether `ext`, everything after the first `;` of a chunk-size line (without the CRLF), is a
/// well-formed chunk-ext. The decoder runs the same states incrementally.
#[cfg(test)]
pub(crate) fn is_valid(ext: &[u8]) -> bool {
    ext.iter().try_fold(ExtState::NameStart, |s, &b| s.next(b)).is_some_and(ExtState::may_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extensions as they follow the first `;` (the tables in body.rs run whole chunk lines).
    const ACCEPT: &[&[u8]] = &[
        b"a",
        b"a=b",
        b" a",
        b"\ta",
        b"a =b",
        b"a= b",
        b"a \t= \tb",
        b"name=\"\"",
        b"a=\"q\\\"x\"",
        b"a=\"x y;z=w\"",
        b"a=\"\\\\\"",
        b"a=\"\t\x80\xff\"",
        b"a=\"\\\x80\"",
        b"a;b",
        b"a=b;c=d",
        b"a=b ;c",
        b"a=\"1\" ; c = d",
        b"a=\"1\";b",
        b"!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~09AZaz",
    ];

    const REJECT: &[&[u8]] = &[
        // Empty: a `;` with nothing after it, an empty name, an empty value.
        b"",
        b" ",
        b"=x",
        b"a=",
        b"a= ",
        b";",
        b"a;",
        b"a=b;",
        b"a;;b",
        // Not a token where one is required.
        b"a b",
        b"a==b",
        b"a=b=c",
        b"a=b c",
        b"\"a\"",
        b"a\"b\"",
        b"a=b\"c\"",
        b"a=\"b\"c",
        b"a=\"b\"\"c\"",
        b"a@b",
        b"a=b,c",
        b"a=(b)",
        b"a/b",
        // Whitespace after the last extension.
        b"a ",
        b"a\t",
        b"a=b ",
        b"a=\"b\" ",
        // Quoted strings: unterminated, bad escapes, control characters.
        b"a=\"b",
        b"a=\"b\\\"",
        b"a=\"\\",
        b"a=\"\\\x01\"",
        b"a=\"\\\x7f\"",
        b"a=\"\\\r\"",
        b"a=\"\x00\"",
        b"a=\"\x7f\"",
        b"a=\"\r\"",
        b"a=\"\n\"",
        // Control characters, DEL and non-ASCII outside quotes.
        b"a\x00",
        b"a\x01=b",
        b"a=b\x7f",
        b"a\x0b",
        b"a\r",
        b"a\n",
        b"\x80",
        b"a=\xff",
    ];

    #[test]
    fn grammar_tables() {
        for ext in ACCEPT {
            assert!(is_valid(ext), "should accept {:?}", String::from_utf8_lossy(ext));
        }
        for ext in REJECT {
            assert!(!is_valid(ext), "should refuse {:?}", String::from_utf8_lossy(ext));
        }
    }

    /// Every byte value in every position of a small template gets the verdict the grammar's
    /// character classes give it, so a gap in the table above cannot hide a lax class.
    #[test]
    fn every_byte_by_class() {
        for b in 0..=255u8 {
            let tchar = TCHAR[usize::from(b)];
            let ws = b == b' ' || b == b'\t';
            // Between two name bytes: more name, or `;` / `=` starting the next part.
            assert_eq!(is_valid(&[b'a', b, b'c']), tchar || b == b';' || b == b'=', "name byte {b:#04x}");
            // Between two bytes of a token value: more value, or `;` starting the next extension.
            assert_eq!(is_valid(&[b'a', b'=', b'b', b, b'c']), tchar || b == b';', "token byte {b:#04x}");
            // Inside quotes.
            let quoted = FIELD_VALUE[usize::from(b)] && b != b'"' && b != b'\\';
            assert_eq!(is_valid(&[b'a', b'=', b'"', b, b'"']), quoted, "quoted byte {b:#04x}");
            // After a backslash.
            assert_eq!(is_valid(&[b'a', b'=', b'"', b'\\', b, b'"']), FIELD_VALUE[usize::from(b)], "escaped {b:#04x}");
            // Between name and `=`: more of the name or BWS, never a second `=`.
            assert_eq!(is_valid(&[b'a', b, b'=', b'c']), ws || tchar, "before = {b:#04x}");
        }
    }
}
