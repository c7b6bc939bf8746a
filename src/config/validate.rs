//! The rules for values given as text: command-line flags, `GUNICORN_CMD_ARGS`, and strings in
//! a config file. Pure Rust, so the rules are testable without an interpreter; `pyvalue.rs`
//! handles the other Python types and delegates strings here.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use super::error::{ConfigError, Source};
use super::table::{Kind, MAX_ID, Setting};
use super::value::{Value, py_repr_str};

/// Validates a textual value for a setting. `source` picks the integer syntax: Gunicorn's argparse
/// reads CLI integers in decimal (`type=int`), while config-file strings go through `int(x, 0)`.
pub fn from_str(s: &Setting, raw: &str, source: Source) -> Result<Value, ConfigError> {
    let bad = |problem: &str| ConfigError::invalid(s, source, py_repr_str(raw), problem);
    let text = raw.trim();
    match s.kind {
        Kind::Str | Kind::Class | Kind::StatsdAddr => Ok(Value::Str(text.to_owned())),
        Kind::SslVersion => Ok(match parse_int(text, true) {
            Some(i) => Value::Int(i),
            None => Value::Str(text.to_owned()),
        }),
        Kind::Int | Kind::IntRange(..) | Kind::IntClamped(..) | Kind::Seconds => {
            let i = parse_wide(text, source == Source::ConfigFile).ok_or_else(|| bad("is not an integer"))?;
            check_int(s, source, text.to_owned(), i)
        }
        Kind::AutoInt | Kind::AutoIntRange(..) => {
            let i = parse_auto_wide(text).ok_or_else(|| bad("is not an integer"))?;
            check_int(s, source, text.to_owned(), i)
        }
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad("is not a boolean (expected true or false)")),
        },
        // A lone string is Gunicorn's legacy spelling of a one-element list.
        Kind::List => Ok(Value::List(if text.is_empty() { vec![] } else { vec![text.to_owned()] })),
        Kind::Files => {
            let list = if text.is_empty() { vec![] } else { vec![text.to_owned()] };
            check_files(s, source, &list)?;
            Ok(Value::List(list))
        }
        Kind::CommaList => Ok(Value::List(comma_list(text))),
        Kind::AddrList => {
            let list = comma_list(text);
            for addr in &list {
                if let Err(problem) = check_network(addr) {
                    return Err(ConfigError::invalid(s, source, py_repr_str(raw), problem));
                }
            }
            Ok(Value::List(list))
        }
        Kind::Pairs | Kind::PyDict => Err(bad("is not a dict")),
        Kind::Choice(words) => {
            let lower = text.to_ascii_lowercase();
            match words.iter().find(|w| **w == lower) {
                Some(w) => Ok(Value::Str((*w).to_owned())),
                None => Err(bad(&format!("is not one of: {}", words.join(", ")))),
            }
        }
        Kind::ProxyProtocol => {
            let canonical = match text.to_ascii_lowercase().as_str() {
                "false" | "off" | "0" | "none" => "off",
                "true" | "auto" | "1" => "auto",
                "v1" => "v1",
                "v2" => "v2",
                _ => return Err(bad("is not one of: off, v1, v2, auto")),
            };
            Ok(Value::Str(canonical.to_owned()))
        }
        Kind::Http2Cleartext => {
            let lower = text.to_ascii_lowercase();
            match lower.as_str() {
                "off" | "prior-knowledge" | "upgrade" | "both" => Ok(Value::Str(lower)),
                _ => Err(bad("is not one of: off, prior-knowledge, upgrade, both")),
            }
        }
        Kind::HttpProtocols => {
            let mut list: Vec<String> = comma_list(&text.to_ascii_lowercase());
            if list.is_empty() {
                list.push("h1".to_owned());
            }
            if list.iter().any(|p| p != "h1" && p != "h2") {
                return Err(bad("is not a comma-separated list of h1 and h2"));
            }
            Ok(Value::List(list))
        }
        Kind::Hook(_) | Kind::PostRequestHook => Err(bad("cannot be set from text here; define a function in the config file")),
        Kind::Chdir => chdir(s, source, text),
        Kind::User => {
            uid_or_gid(s, source, text, |name| nix::unistd::User::from_name(name).ok().flatten().map(|u| u.uid.as_raw()))
        }
        Kind::Group => {
            uid_or_gid(s, source, text, |name| nix::unistd::Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw()))
        }
    }
}

/// Checks an integer against the bounds its row declares, the one place every integer setting
/// goes through (command line, `GUNICORN_CMD_ARGS`, config-file text and Python ints). `i` is
/// wide so that values beyond `i64` (`10**30`) are judged rather than wrapped. Kinds whose
/// large values have a meaning (clamped limits, "no limit" durations) keep them, saturated to
/// `i64::MAX`; `Config::int` and `Config::duration` interpret them.
pub fn check_int(s: &Setting, source: Source, shown: String, i: i128) -> Result<Value, ConfigError> {
    let (lo, hi, saturate) = match s.kind {
        Kind::Int | Kind::AutoInt => (0, i64::MAX, false),
        Kind::IntRange(lo, hi) | Kind::AutoIntRange(lo, hi) => (lo, hi, false),
        Kind::IntClamped(lo, _) => (lo, i64::MAX, true),
        Kind::Seconds => (0, i64::MAX, true),
        Kind::User | Kind::Group => (0, MAX_ID, false),
        _ => return Err(ConfigError::invalid(s, source, shown, "is not a text value")),
    };
    let range = s.kind.range_text().unwrap_or_default();
    if i < i128::from(lo) {
        let problem = if lo == 0 && !matches!(s.kind, Kind::User | Kind::Group | Kind::IntRange(..) | Kind::AutoIntRange(..)) {
            "is negative; expected an integer >= 0".to_owned()
        } else {
            format!("is out of range; expected {range}")
        };
        return Err(ConfigError::invalid(s, source, shown, problem));
    }
    match i64::try_from(i) {
        Ok(v) if v <= hi => Ok(Value::Int(v)),
        _ if saturate => Ok(Value::Int(i64::MAX)),
        _ => Err(ConfigError::invalid(s, source, shown, format!("is out of range; expected {range}"))),
    }
}

/// `parse_wide` narrowed to `i64` (`None` when it does not fit).
pub fn parse_int(text: &str, base0: bool) -> Option<i64> {
    parse_wide(text, base0).and_then(|i| i64::try_from(i).ok())
}

/// Python's `int(text)` (`base0 == false`) or `int(text, 0)` (`base0 == true`): optional sign,
/// underscores between digits, and with `base0` the `0x`/`0o`/`0b` prefixes. Numbers beyond
/// `i128` saturate (every bound fits in `i64`, so they are judged the same).
pub fn parse_wide(text: &str, base0: bool) -> Option<i128> {
    let t = text.trim();
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if base0 && lower.len() > 1 && lower.starts_with('0') {
        match &lower[1..2] {
            "x" => (16, &lower[2..]),
            "o" => (8, &lower[2..]),
            "b" => (2, &lower[2..]),
            // `int("010", 0)` is an error in Python, but "0" and "00" are fine.
            _ if lower.bytes().all(|b| b == b'0' || b == b'_') => (10, lower.as_str()),
            _ => return None,
        }
    } else {
        (10, lower.as_str())
    };
    // After a radix prefix one underscore may come first ("0x_ff"); otherwise underscores only
    // sit between digits.
    let digits = if radix != 10 { digits.strip_prefix('_').unwrap_or(digits) } else { digits };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let mut n: i128 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let d = i128::from(c.to_digit(radix)?);
        n = n.saturating_mul(i128::from(radix)).saturating_add(d);
    }
    Some(if neg { -n } else { n })
}

/// Gunicorn's `auto_int`: a leading zero followed by a digit means octal (`022`), otherwise
/// Python's `int(x, 0)`.
pub fn parse_auto_wide(text: &str) -> Option<i128> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() > 1 && b[0] == b'0' && b[1].is_ascii_digit() {
        return parse_wide(&format!("0o{}", &t[1..]), true);
    }
    parse_wide(t, true)
}

/// Gunicorn's comma lists: split on commas, trim, drop empty entries.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect()
}

/// `*`, an IP address, or a network with no host bits set (Python's strict `ip_network`), so a
/// typo like `10.0.0.1/8` is caught instead of silently trusting a different range.
pub fn check_network(addr: &str) -> Result<(), String> {
    if addr == "*" {
        return Ok(());
    }
    let bad = || format!("contains {}, which is not an IP address or network", py_repr_str(addr));
    let (ip, prefix) = match addr.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (addr, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let Some(prefix) = prefix else { return Ok(()) };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u32 = prefix.parse().ok().filter(|l| *l <= max).ok_or_else(bad)?;
    let bits: u128 = match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    let host_mask: u128 = if len == max { 0 } else { (1u128 << (max - len)) - 1 };
    if bits & host_mask != 0 {
        return Err(format!("contains {}, which has host bits set", py_repr_str(addr)));
    }
    Ok(())
}

fn check_files(s: &Setting, source: Source, list: &[String]) -> Result<(), ConfigError> {
    for entry in list {
        let is_pattern = entry.contains(['*', '?', '[']);
        if !is_pattern && !Path::new(entry).exists() {
            return Err(ConfigError::invalid(s, source, py_repr_str(entry), "is not an existing file"));
        }
    }
    Ok(())
}

pub fn files(s: &Setting, source: Source, list: Vec<String>) -> Result<Value, ConfigError> {
    check_files(s, source, &list)?;
    Ok(Value::List(list))
}

/// Gunicorn resolves `chdir` against the current directory and normalises it lexically
/// (`os.path.normpath`), then insists that it exists.
fn chdir(s: &Setting, source: Source, text: &str) -> Result<Value, ConfigError> {
    let bad = || ConfigError::invalid(s, source, py_repr_str(text), "is not a directory that exists (can't chdir to it)");
    let cwd = std::env::current_dir().map_err(|_| bad())?;
    let path = normalize(&cwd.join(text));
    if !path.exists() {
        return Err(bad());
    }
    Ok(Value::Str(path.to_string_lossy().into_owned()))
}

pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn uid_or_gid(s: &Setting, source: Source, text: &str, lookup: impl Fn(&str) -> Option<u32>) -> Result<Value, ConfigError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let id = parse_wide(text, false).ok_or_else(|| ConfigError::invalid(s, source, py_repr_str(text), "is not a number"))?;
        return check_int(s, source, text.to_owned(), id);
    }
    let what = if s.kind == Kind::User { "user" } else { "group" };
    lookup(text)
        .map(|id| Value::Int(i64::from(id)))
        .ok_or_else(|| ConfigError::invalid(s, source, py_repr_str(text), format!("is not a known {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::table::{Key, setting};

    fn err(key: Key, raw: &str) -> String {
        match from_str(setting(key), raw, Source::CommandLine) {
            Err(e) => e.to_string(),
            Ok(v) => panic!("{raw:?} was accepted as {v:?}"),
        }
    }

    #[test]
    fn python_int_syntax() {
        assert_eq!(parse_int(" 42 ", false), Some(42));
        assert_eq!(parse_int("1_000", false), Some(1000));
        assert_eq!(parse_int("0x10", false), None);
        assert_eq!(parse_int("0x10", true), Some(16));
        assert_eq!(parse_int("0o17", true), Some(15));
        assert_eq!(parse_int("010", true), None);
        assert_eq!(parse_int("00", true), Some(0));
        assert_eq!(parse_int("-3", false), Some(-3));
        assert_eq!(parse_int("1__0", false), None);
        assert_eq!(parse_int("", false), None);
        assert_eq!(parse_auto_wide("022"), Some(0o22));
        assert_eq!(parse_auto_wide("0x1f"), Some(31));
        assert_eq!(parse_auto_wide("18"), Some(18));
        assert_eq!(parse_wide("1000000000000000000000000000000", false), Some(10i128.pow(30)));
        assert_eq!(parse_wide(&"9".repeat(60), false), Some(i128::MAX));
        assert_eq!(parse_int("9223372036854775808", false), None);
    }

    #[test]
    fn messages_name_setting_value_and_expectation() {
        assert_eq!(err(Key::Workers, "abc"), "Error: invalid value for workers (-w/--workers): 'abc' is not an integer");
        assert_eq!(
            err(Key::Timeout, "-1"),
            "Error: invalid value for timeout (-t/--timeout): -1 is negative; expected an integer >= 0"
        );
        assert!(err(Key::HeaderMap, "keep").contains("'keep' is not one of: drop, refuse, dangerous"));
        assert!(err(Key::ForwardedAllowIps, "10.0.0.1/8").contains("host bits set"));
        assert!(err(Key::ForwardedAllowIps, "localhost").contains("not an IP address"));
        assert!(err(Key::Http2MaxFrameSize, "100").contains("16384 to 16777215"));
        assert!(err(Key::Chdir, "/no/such/dir").contains("can't chdir"));
    }

    #[test]
    fn accepted_shapes() {
        let ok = |k, raw| from_str(setting(k), raw, Source::CommandLine).unwrap();
        assert_eq!(
            ok(Key::ForwardedAllowIps, "127.0.0.1, ::1,10.0.0.0/8,*"),
            Value::List(vec!["127.0.0.1".into(), "::1".into(), "10.0.0.0/8".into(), "*".into()])
        );
        assert_eq!(ok(Key::ProxyProtocol, "TRUE"), Value::Str("auto".into()));
        assert_eq!(ok(Key::Umask, "027"), Value::Int(0o27));
        assert_eq!(ok(Key::HttpProtocols, "H2, h1"), Value::List(vec!["h2".into(), "h1".into()]));
        assert_eq!(ok(Key::User, "0"), Value::Int(0));
        assert_eq!(ok(Key::User, "root"), Value::Int(0));
        assert_eq!(ok(Key::Chdir, "/tmp/../tmp/."), Value::Str("/tmp".into()));
        assert_eq!(ok(Key::Workers, "1_0"), Value::Int(10));
        // Config-file strings use int(x, 0), the command line plain int(x).
        assert_eq!(from_str(setting(Key::Workers), "0x4", Source::ConfigFile).unwrap(), Value::Int(4));
        assert!(from_str(setting(Key::Workers), "0x4", Source::CommandLine).is_err());
    }
}
