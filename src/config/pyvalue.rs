//! The rules for values that a config file gives as Python objects. Strings go through the same
//! text rules as the command line; other types are accepted where Gunicorn accepts them.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple};

use super::error::{ConfigError, Source};
use super::table::{Kind, Setting};
use super::validate;
use super::value::Value;

const SRC: Source = Source::ConfigFile;

/// Validates one module-level value of the config file for its setting.
pub fn convert(s: &'static Setting, obj: &Bound<'_, PyAny>) -> Result<Value, ConfigError> {
    let bad = |problem: String| ConfigError::invalid(s, SRC, repr(obj), problem);
    let expected = || format!("is not {}", expected(s.kind));

    if obj.is_none() {
        return match s.kind {
            Kind::Str | Kind::Class | Kind::StatsdAddr | Kind::SslVersion => Ok(Value::None),
            Kind::Bool => Ok(Value::Bool(false)),
            Kind::List | Kind::Files | Kind::CommaList | Kind::AddrList => Ok(Value::List(vec![])),
            Kind::Choice(_) | Kind::ProxyProtocol | Kind::Http2Cleartext | Kind::HttpProtocols => {
                Ok(Value::from_default(&s.default))
            }
            Kind::User | Kind::Group => Ok(own_id(s.kind)),
            _ => Err(bad(expected())),
        };
    }
    // `bool` is a subclass of `int` in Python, so it is checked first.
    if let Ok(b) = obj.cast::<PyBool>() {
        let b = b.is_true();
        return match s.kind {
            Kind::Bool => Ok(Value::Bool(b)),
            k if k.is_int() => validate::check_int(s, SRC, repr(obj), i128::from(b)),
            Kind::ProxyProtocol => Ok(Value::Str(if b { "auto" } else { "off" }.into())),
            Kind::Http2Cleartext => Ok(Value::Str(if b { "prior-knowledge" } else { "off" }.into())),
            _ => Err(bad(expected())),
        };
    }
    if obj.is_instance_of::<PyInt>() {
        // Beyond i128 (`10**40`), only the sign matters to the bounds.
        let i: i128 = match obj.extract() {
            Ok(i) => i,
            Err(_) if obj.gt(0).unwrap_or(false) => i128::MAX,
            Err(_) => i128::MIN,
        };
        return match s.kind {
            k if k.is_int() => validate::check_int(s, SRC, repr(obj), i),
            Kind::SslVersion => Ok(Value::Int(i64::try_from(i).unwrap_or(i64::MAX))),
            _ => Err(bad(expected())),
        };
    }
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_cow().map_err(|_| bad("is not valid text".into()))?;
        let text: &str = &text;
        return match s.kind {
            Kind::Hook(n) => hook(s, &import_path(s, obj.py(), text)?, Some(n)),
            Kind::PostRequestHook => hook(s, &import_path(s, obj.py(), text)?, None),
            _ => validate::from_str(s, text, SRC),
        };
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        if !matches!(s.kind, Kind::List | Kind::Files) {
            return Err(bad(expected()));
        }
        let mut list = Vec::new();
        for item in obj.try_iter().map_err(|_| bad(expected()))? {
            let item = item.map_err(|_| bad(expected()))?;
            let text: String = item.extract().map_err(|_| bad(format!("contains {}, which is not a string", repr(&item))))?;
            list.push(text.trim().to_owned());
        }
        return if s.kind == Kind::Files { validate::files(s, SRC, list) } else { Ok(Value::List(list)) };
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        return match s.kind {
            Kind::PyDict => Ok(Value::Py(Arc::new(obj.clone().unbind()), repr(obj))),
            Kind::Pairs => {
                let mut pairs = Vec::new();
                for (k, v) in dict.iter() {
                    pairs.push((str_of(&k), str_of(&v)));
                }
                Ok(Value::Pairs(pairs))
            }
            _ => Err(bad(expected())),
        };
    }
    if obj.is_callable() {
        return match s.kind {
            Kind::Hook(n) => hook(s, obj, Some(n)),
            Kind::PostRequestHook => hook(s, obj, None),
            Kind::Class => class(s, obj),
            _ => Err(bad(expected())),
        };
    }
    Err(bad(expected()))
}

fn own_id(kind: Kind) -> Value {
    let id = if kind == Kind::User { nix::unistd::geteuid().as_raw() } else { nix::unistd::getegid().as_raw() };
    Value::Int(i64::from(id))
}

/// What a kind accepts, phrased to follow "is not".
fn expected(kind: Kind) -> String {
    match kind {
        Kind::Str | Kind::StatsdAddr | Kind::Chdir => "a string".into(),
        Kind::Int | Kind::AutoInt | Kind::IntRange(..) | Kind::IntClamped(..) | Kind::AutoIntRange(..) | Kind::Seconds => {
            format!("an integer ({})", kind.range_text().unwrap_or_default())
        }
        Kind::Bool => "a boolean (True or False)".into(),
        Kind::List | Kind::Files => "a string or a list of strings".into(),
        Kind::CommaList | Kind::AddrList | Kind::HttpProtocols => "a comma-separated string".into(),
        Kind::Pairs | Kind::PyDict => "a dict".into(),
        Kind::Choice(words) => format!("one of: {}", words.join(", ")),
        Kind::ProxyProtocol => "one of: off, v1, v2, auto".into(),
        Kind::Http2Cleartext => "one of: off, prior-knowledge, upgrade, both".into(),
        Kind::Class => "a class or a dotted path to one".into(),
        Kind::Hook(n) => format!("a callable taking {n} positional argument{}", if n == 1 { "" } else { "s" }),
        Kind::PostRequestHook => "a callable taking 2, 3 or 4 positional arguments".into(),
        Kind::User => "a user name or uid".into(),
        Kind::Group => "a group name or gid".into(),
        Kind::SslVersion => "a string or an integer".into(),
    }
}

pub fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| "<unprintable object>".into())
}

fn str_of(obj: &Bound<'_, PyAny>) -> String {
    obj.str().map(|r| r.to_string()).unwrap_or_else(|_| repr(obj))
}

/// `module.sub.name` to the object it names, as Gunicorn allows for hooks.
fn import_path<'py>(s: &'static Setting, py: Python<'py>, path: &str) -> Result<Bound<'py, PyAny>, ConfigError> {
    let quoted = super::value::py_repr_str(path);
    let Some((module, name)) = path.rsplit_once('.') else {
        return Err(ConfigError::invalid(s, SRC, quoted, "is not a callable or an import path (module.name)"));
    };
    let m = py.import(module).map_err(|e| ConfigError::invalid(s, SRC, quoted.clone(), format!("cannot be imported: {e}")))?;
    m.getattr(name).map_err(|_| ConfigError::invalid(s, SRC, quoted, format!("names nothing: module {module} has no {name}")))
}

/// Checks a hook's arity the way Gunicorn counts it (positional parameters of its signature).
/// `arity` of `None` means `post_request`, which takes 2 to 4 and is wrapped to always take 4.
fn hook(s: &'static Setting, obj: &Bound<'_, PyAny>, arity: Option<u8>) -> Result<Value, ConfigError> {
    let py = obj.py();
    let bad = |problem: String| ConfigError::invalid(s, SRC, repr(obj), problem);
    if !obj.is_callable() {
        return Err(bad(format!("is not {}", expected(s.kind))));
    }
    let n = positional_arity(obj).map_err(|e| bad(format!("has a signature that cannot be inspected ({e})")))?;
    let desc = format!("<{}()>", obj.getattr("__qualname__").map(|q| str_of(&q)).unwrap_or_else(|_| repr(obj)));
    match arity {
        Some(want) if n == usize::from(want) => Ok(Value::Py(Arc::new(obj.clone().unbind()), desc)),
        Some(_) => Err(bad(format!("takes {n} positional arguments; expected {}", expected(s.kind)))),
        None if (2..=4).contains(&n) => {
            let adapt = py
                .eval(
                    c"lambda f, n: f if n == 4 else ((lambda w, r, e, resp: f(w, r, e)) if n == 3 else (lambda w, r, e, resp: f(w, r)))",
                    None,
                    None,
                )
                .and_then(|a| a.call1((obj, n)))
                .map_err(|e| ConfigError::Python(e.to_string()))?;
            Ok(Value::Py(Arc::new(adapt.unbind()), desc))
        }
        None => Err(bad(format!("takes {n} positional arguments; expected {}", expected(s.kind)))),
    }
}

fn positional_arity(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let inspect = obj.py().import("inspect")?;
    let sig = inspect.getattr("signature")?.call1((obj,))?;
    let param = inspect.getattr("Parameter")?;
    let kinds = (param.getattr("POSITIONAL_ONLY")?, param.getattr("POSITIONAL_OR_KEYWORD")?);
    let mut n = 0;
    for p in sig.getattr("parameters")?.call_method0("values")?.try_iter()? {
        let kind = p?.getattr("kind")?;
        if kind.eq(&kinds.0)? || kind.eq(&kinds.1)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Gunicorn accepts a class, or a function returning one (called once), for class settings.
fn class(s: &'static Setting, obj: &Bound<'_, PyAny>) -> Result<Value, ConfigError> {
    let py = obj.py();
    let inspect = py.import("inspect").map_err(|e| ConfigError::Python(e.to_string()))?;
    let is = |f: &str, o: &Bound<'_, PyAny>| -> bool {
        inspect.getattr(f).and_then(|f| f.call1((o,))).and_then(|r| r.is_truthy()).unwrap_or(false)
    };
    let mut target = obj.clone();
    if is("isfunction", obj) || is("ismethod", obj) {
        target = obj.call0().map_err(|e| ConfigError::invalid(s, SRC, repr(obj), format!("raised when called: {e}")))?;
    }
    if is("isclass", &target) {
        let desc = format!("<{}()>", target.getattr("__qualname__").map(|q| str_of(&q)).unwrap_or_else(|_| repr(&target)));
        return Ok(Value::Py(Arc::new(target.unbind()), desc));
    }
    convert(s, &target)
}
