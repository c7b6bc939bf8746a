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

/// True if every byte of `v` is allowed in a field value ([`FIELD_VALUE`]).
///
/// Eight bytes at a time: a word is clean when no byte is below 0x20 and none is 0x7F (the
/// classic "has a byte less than n" and "has a zero byte" bit tricks, which are exact as
/// existence tests). Only a flagged word (usually one holding a tab) is re-checked bytewise.
#[inline]
pub(crate) fn is_field_value(v: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    let mut words = v.chunks_exact(8);
    for w in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let x = u64::from_le_bytes(bytes);
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let d = x ^ (ONES * 0x7f);
        let del = d.wrapping_sub(ONES) & !d & HIGH;
        if below_space | del != 0 && !w.iter().all(|&b| FIELD_VALUE[b as usize]) {
            return false;
        }
    }
    words.remainder().iter().all(|&b| FIELD_VALUE[b as usize])
}

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
        // The word-at-a-time check agrees with the table for every byte at every position.
        for b in 0..=255u8 {
            for pos in 0..17 {
                let mut v = vec![b'a'; 17];
                v[pos] = b;
                assert_eq!(is_field_value(&v), FIELD_VALUE[b as usize], "byte {b:#x} at {pos}");
                assert_eq!(is_field_value(&v[..pos + 1]), FIELD_VALUE[b as usize]);
            }
        }
        assert!(is_field_value(b"\t\t\t\t\t\t\t\t\x80\xff~ "));
    }
}
