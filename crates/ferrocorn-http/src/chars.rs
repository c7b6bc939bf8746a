//! Byte classes from RFC 9110 section 5.6.2 (token) and section 5.5 (field values), as
//! 256-entry tables so the hot loops do one load per byte.

const fn build_tchar() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        i += 1;
    }
    t
}

const fn build_field_value() -> [bool; 256] {
    // field-vchar = VCHAR / obs-text, plus SP and HTAB inside a value (RFC 9110 section 5.5).
    // Every other control character, and DEL, is refused (as Gunicorn does).
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i == 0x09 || (i >= 0x20 && i != 0x7f);
        i += 1;
    }
    t
}

/// `tchar` from RFC 9110 section 5.6.2.
pub(crate) static TCHAR: [bool; 256] = build_tchar();
/// Bytes allowed in a field value (after the surrounding whitespace is removed).
pub(crate) static FIELD_VALUE: [bool; 256] = build_field_value();

/// True if `s` is a non-empty RFC 9110 token.
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| TCHAR[b as usize])
}

/// Removes leading and trailing SP / HTAB (OWS, RFC 9110 section 5.6.3).
#[inline]
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(is_token(b"X.Custom|Pipe"));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a:b"));
        assert!(FIELD_VALUE[0x80] && FIELD_VALUE[b'\t' as usize]);
        assert!(!FIELD_VALUE[0] && !FIELD_VALUE[0x7f] && !FIELD_VALUE[b'\r' as usize]);
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b" \t "), b"");
    }
}
