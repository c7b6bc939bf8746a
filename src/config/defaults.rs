//! Defaults that Gunicorn computes from the environment when it starts, rather than constants.

use std::collections::HashMap;
use std::path::Path;

use super::error::{ConfigError, Source};
use super::table::{self, DefaultValue, Key, Kind, SETTINGS, setting};
use super::validate;
use super::value::Value;

/// The environment the defaults are computed from (a snapshot, so tests can pass their own).
pub type Env = HashMap<String, String>;

/// Every setting's default, in table order.
pub fn all(env: &Env) -> Result<Vec<Value>, ConfigError> {
    SETTINGS
        .iter()
        .map(|s| match s.default {
            DefaultValue::Computed(_) => computed(s.key, env),
            // Comma-separated defaults are written as Gunicorn writes them, but stored as the
            // list their rule produces, so accessors see one shape whatever the source.
            DefaultValue::Str(text) if matches!(s.kind, Kind::CommaList | Kind::AddrList | Kind::HttpProtocols) => {
                validate::from_str(s, text, Source::Default)
            }
            ref d => Ok(Value::from_default(d)),
        })
        .collect()
}

fn computed(key: Key, env: &Env) -> Result<Value, ConfigError> {
    Ok(match key {
        // Platforms such as Heroku announce the port to serve on through `PORT`.
        Key::Bind => Value::List(vec![match env.get("PORT") {
            Some(port) => format!("0.0.0.0:{port}"),
            None => "127.0.0.1:8000".to_owned(),
        }]),
        Key::Workers => match env.get("WEB_CONCURRENCY") {
            None => Value::Int(1),
            // The same bounds as `-w`: the env var stands in for the setting.
            Some(raw) => {
                let workers = setting(Key::Workers);
                match validate::parse_wide(raw, false).map(|n| validate::check_int(workers, Source::Default, raw.clone(), n)) {
                    Some(Ok(v)) => v,
                    _ => {
                        return Err(ConfigError::BadEnv {
                            var: "WEB_CONCURRENCY",
                            value: raw.clone(),
                            problem: format!("is not an integer ({})", workers.kind.range_text().unwrap_or_default()),
                        });
                    }
                }
            }
        },
        Key::ForwardedAllowIps => {
            let raw = env.get("FORWARDED_ALLOW_IPS").map_or("127.0.0.1,::1", String::as_str);
            let list = validate::comma_list(raw);
            for addr in &list {
                if let Err(problem) = validate::check_network(addr) {
                    return Err(ConfigError::BadEnv { var: "FORWARDED_ALLOW_IPS", value: raw.to_owned(), problem });
                }
            }
            Value::List(list)
        }
        // Gunicorn reads `SENDFILE` only when the setting itself is left alone.
        Key::Sendfile => Value::Bool(match env.get("SENDFILE") {
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "y" | "1" | "yes" | "true"),
            None => true,
        }),
        Key::Chdir => Value::Str(
            std::env::current_dir()
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| ConfigError::Python(format!("cannot read the current directory: {e}")))?,
        ),
        Key::User => Value::Int(i64::from(nix::unistd::geteuid().as_raw())),
        Key::Group => Value::Int(i64::from(nix::unistd::getegid().as_raw())),
        Key::ControlSocket => {
            let xdg = env.get("XDG_RUNTIME_DIR").filter(|d| !d.is_empty() && Path::new(d).is_dir());
            let path = match xdg {
                Some(dir) => Path::new(dir).join("gunicorn.ctl"),
                None => Path::new(env.get("HOME").map_or("~", String::as_str)).join(".gunicorn/gunicorn.ctl"),
            };
            Value::Str(path.to_string_lossy().into_owned())
        }
        // A `Computed` default without a rule here is a table bug; surface it rather than guess.
        other => {
            let s = table::setting(other);
            debug_assert!(false, "no computed default for {}", s.name);
            return Err(ConfigError::invalid(s, Source::Default, "?".into(), "has no default rule"));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn environment_feeds_defaults() {
        let d = all(&env(&[("PORT", "5000"), ("WEB_CONCURRENCY", "4"), ("FORWARDED_ALLOW_IPS", "10.0.0.0/8")])).unwrap();
        assert_eq!(d[Key::Bind as usize], Value::List(vec!["0.0.0.0:5000".into()]));
        assert_eq!(d[Key::Workers as usize], Value::Int(4));
        assert_eq!(d[Key::ForwardedAllowIps as usize], Value::List(vec!["10.0.0.0/8".into()]));
        let d = all(&env(&[])).unwrap();
        assert_eq!(d[Key::Bind as usize], Value::List(vec!["127.0.0.1:8000".into()]));
        assert_eq!(d[Key::Workers as usize], Value::Int(1));
        assert_eq!(d[Key::Sendfile as usize], Value::Bool(true));
        let d = all(&env(&[("SENDFILE", "no")])).unwrap();
        assert_eq!(d[Key::Sendfile as usize], Value::Bool(false));
    }

    #[test]
    fn bad_environment_is_named() {
        let e = all(&env(&[("WEB_CONCURRENCY", "lots")])).unwrap_err().to_string();
        assert!(e.contains("WEB_CONCURRENCY") && e.contains("lots"), "{e}");
        let e = all(&env(&[("WEB_CONCURRENCY", "100000")])).unwrap_err().to_string();
        assert!(e.contains("WEB_CONCURRENCY") && e.contains("0 to 4096"), "{e}");
    }
}
