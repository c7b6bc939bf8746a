//! `log_format = json`: the error log and the access log as one JSON object per line, for log
//! shippers. Every value is escaped here, so nothing a client sends (quotes, newlines,
//! backslashes, bytes that are not UTF-8) can end a string, add a field or break a line.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Chooses the line format for both logs (set when logging is configured, and again on HUP).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Release);
}

pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// `ferrocorn._core._log_is_json()`: whether Python-side handlers should hand records over
/// unformatted (through `_core.log`) so they become JSON lines too.
#[pyo3::pyfunction]
pub fn _log_is_json() -> bool {
    is_json()
}

/// Appends the inside of a JSON string for `value`: `"` and `\` escaped, control characters
/// (newlines included) as `\n`/`\uXXXX`, valid UTF-8 kept as is, and each byte that is not
/// valid UTF-8 shown as the text `\xHH` (as the text log shows it), so the line stays valid
/// JSON and the original bytes can still be read off.
pub fn push_json_escaped(buf: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '\t' => buf.extend_from_slice(b"\\t"),
                // U+2028/2029 end lines in JavaScript; escape them with the other controls.
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        buf.extend_from_slice(b"\\u");
                        for shift in [12, 8, 4, 0] {
                            buf.push(HEX[usize::from((*u >> shift) & 15)]);
                        }
                    }
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        for &b in chunk.invalid() {
            buf.extend_from_slice(&[b'\\', b'\\', b'x', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// Appends `"key":"value"` (with a leading comma unless `first`).
pub fn push_field(buf: &mut Vec<u8>, first: bool, key: &[u8], value: &[u8]) {
    if !first {
        buf.push(b',');
    }
    buf.push(b'"');
    push_json_escaped(buf, key);
    buf.extend_from_slice(b"\":\"");
    push_json_escaped(buf, value);
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(v: &[u8]) -> String {
        let mut buf = Vec::new();
        push_json_escaped(&mut buf, v);
        String::from_utf8(buf).expect("escaped output is UTF-8")
    }

    #[test]
    fn hostile_values_stay_inside_their_string() {
        assert_eq!(escaped(b"a\"b\\c"), r#"a\"b\\c"#);
        assert_eq!(escaped(b"x\r\n{\"level\":\"CRITICAL\"}"), r#"x\r\n{\"level\":\"CRITICAL\"}"#);
        assert_eq!(escaped(b"\x00\x1b\x7f"), r#"\u0000\u001b\u007f"#);
        assert_eq!(escaped("é\u{2028}".as_bytes()), "é\\u2028");
        assert_eq!(escaped(b"\xff\xfeok"), r#"\\xff\\xfeok"#);
    }

    #[test]
    fn fields_parse_back() {
        let mut buf = vec![b'{'];
        push_field(&mut buf, true, b"a", b"1\"\n\xff");
        push_field(&mut buf, false, b"b", b"");
        buf.push(b'}');
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
        assert_eq!(v["a"], "1\"\n\\xff");
        assert_eq!(v["b"], "");
    }
}
