//! Validated setting values, and how `--print-config` shows them.

use pyo3::prelude::*;
use std::fmt;
use std::sync::Arc;

use super::table::DefaultValue;

/// One value of a setting, after validation.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<String>),
    /// Dict-like settings (`secure_scheme_headers`), in insertion order.
    Pairs(Vec<(String, String)>),
    /// A Python callable (server hooks), class (`worker_class` from a file) or object
    /// (`logconfig_dict`). The text is a description for `--print-config`, taken when the value
    /// was validated so printing never needs the interpreter.
    Py(Arc<Py<PyAny>>, String),
}

impl Value {
    /// The value a compile-time default stands for. `Computed` defaults are filled in by
    /// `defaults.rs`; here they become `None`.
    pub fn from_default(d: &DefaultValue) -> Value {
        match *d {
            DefaultValue::None | DefaultValue::Computed(_) => Value::None,
            DefaultValue::Bool(b) => Value::Bool(b),
            DefaultValue::Int(i) => Value::Int(i),
            DefaultValue::Str(s) => Value::Str(s.to_owned()),
            DefaultValue::List(l) => Value::List(l.iter().map(|s| (*s).to_owned()).collect()),
            DefaultValue::Pairs(p) => Value::Pairs(p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        }
    }
}

/// Python objects compare by identity (`is`), everything else by content.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Pairs(a), Value::Pairs(b)) => a == b,
            (Value::Py(a, _), Value::Py(b, _)) => a.as_ptr() == b.as_ptr(),
            _ => false,
        }
    }
}

/// The Python-like rendering `--print-config` uses, close to Gunicorn's output.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", py_repr_str(s))?;
                }
                f.write_str("]")
            }
            Value::Pairs(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", py_repr_str(k), py_repr_str(v))?;
                }
                f.write_str("}")
            }
            Value::Py(_, desc) => f.write_str(desc),
        }
    }
}

/// A string quoted the way Python's `repr` would quote it (single quotes unless the text has one).
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}
