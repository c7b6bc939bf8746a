//! Local time for log lines, in Gunicorn's two formats.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Broken-down local time with the UTC offset in effect at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LocalTime {
    pub(super) year: i32,
    pub(super) month: u8,
    pub(super) day: u8,
    pub(super) hour: u8,
    pub(super) min: u8,
    pub(super) sec: u8,
    pub(super) offset_secs: i32,
}

pub(super) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

pub(super) fn local_time(secs: i64) -> LocalTime {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain old data for which all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live locals; localtime_r is the reentrant variant and
    // writes only into `tm`.
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if !ok {
        return LocalTime { year: 1970, month: 1, day: 1, hour: 0, min: 0, sec: 0, offset_secs: 0 };
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
        min: tm.tm_min as u8,
        // A leap second (60) is printed as is, like strftime does.
        sec: tm.tm_sec as u8,
        offset_secs: tm.tm_gmtoff as i32,
    }
}

fn push_offset(buf: &mut Vec<u8>, offset_secs: i32) {
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let m = offset_secs.unsigned_abs() / 60;
    let _ = write!(buf, "{sign}{:02}{:02}", m / 60, m % 60);
}

/// `[2026-11-27 06:28:30 +0000]`, Gunicorn's error-log `datefmt`.
pub(super) fn push_error_time(buf: &mut Vec<u8>, lt: &LocalTime) {
    let _ = write!(buf, "[{:04}-{:02}-{:02} {:02}:{:02}:{:02} ", lt.year, lt.month, lt.day, lt.hour, lt.min, lt.sec);
    push_offset(buf, lt.offset_secs);
    buf.push(b']');
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `[27/Nov/2026:06:28:30 +0000]`, the Common Log Format time of `%(t)s`.
pub(super) fn push_clf_time(buf: &mut Vec<u8>, lt: &LocalTime) {
    let mon = MONTHS.get(usize::from(lt.month.saturating_sub(1))).unwrap_or(&"Jan");
    let _ = write!(buf, "[{:02}/{mon}/{:04}:{:02}:{:02}:{:02} ", lt.day, lt.year, lt.hour, lt.min, lt.sec);
    push_offset(buf, lt.offset_secs);
    buf.push(b']');
}
