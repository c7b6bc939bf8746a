//! Settings: the one table (names, flags, defaults, validators, docs), layered values merged in
//! Gunicorn's order (defaults < config file < GUNICORN_CMD_ARGS < command line), then frozen.
//!
//! - `table.rs`: the table and the generated `Key` enum.
//! - `validate.rs` / `pyvalue.rs`: the rules for text values and for Python objects.
//! - `defaults.rs`: defaults taken from the environment (`PORT`, `WEB_CONCURRENCY`, ...).
//! - `file.rs`: running the config file.
//! - `docs.rs`: `docs/settings.md` and `--print-config` output.
//! - `crate::cli`: argv and `GUNICORN_CMD_ARGS` into a `Layer`.

mod defaults;
mod docs;
mod error;
mod file;
mod pyvalue;
mod table;
mod validate;
mod value;

use pyo3::prelude::*;
use std::io::Write;
use std::time::Duration;

pub use defaults::Env;
pub use docs::settings_markdown;
pub use error::{ConfigError, Source};
pub use table::{Action, DefaultValue, Key, Kind, MAX_ID, NO_LIMIT_SECS, SETTINGS, Section, Setting, by_name, setting};
pub use validate::from_str as value_from_str;
pub use value::Value;

/// Values one source (config file, `GUNICORN_CMD_ARGS`, command line) gave, by key.
#[derive(Debug, Clone)]
pub struct Layer {
    values: Vec<Option<Value>>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer { values: vec![None; SETTINGS.len()] }
    }
    pub fn set(&mut self, key: Key, value: Value) {
        self.values[key as usize] = Some(value);
    }
    pub fn get(&self, key: Key) -> Option<&Value> {
        self.values[key as usize].as_ref()
    }
}

impl std::default::Default for Layer {
    fn default() -> Layer {
        Layer::new()
    }
}

/// The merged, frozen settings.
#[derive(Debug, Clone)]
pub struct Config {
    values: Vec<Value>,
    sources: Vec<Source>,
    defaults: Vec<Value>,
}

impl Config {
    /// Merges layers over the defaults; later layers win.
    pub fn merge(defaults: Vec<Value>, layers: &[(Source, &Layer)]) -> Config {
        let mut values = defaults.clone();
        let mut sources = vec![Source::Default; SETTINGS.len()];
        for (source, layer) in layers {
            for (i, v) in layer.values.iter().enumerate() {
                if let Some(v) = v {
                    values[i] = v.clone();
                    sources[i] = *source;
                }
            }
        }
        Config { values, sources, defaults }
    }

    pub fn get(&self, key: Key) -> &Value {
        &self.values[key as usize]
    }

    /// Where the value came from; `Source::Default` when nothing set it.
    pub fn source(&self, key: Key) -> Source {
        self.sources[key as usize]
    }

    /// Whether a config file, `GUNICORN_CMD_ARGS` or the command line set this setting.
    pub fn is_set(&self, key: Key) -> bool {
        self.source(key) != Source::Default
    }

    /// Integer settings, within their row's bounds (validation refused anything below; a
    /// clamped limit above its ceiling reads as the ceiling). Panics only on a table bug (key
    /// of another type), never on user input.
    pub fn int(&self, key: Key) -> i64 {
        match (self.get(key), setting(key).kind) {
            (Value::Int(i), Kind::IntClamped(_, hi)) => (*i).min(hi),
            (Value::Int(i), _) => *i,
            (other, _) => table_bug(key, "an integer", other),
        }
    }

    /// An integer setting converted to the type its consumer needs (`usize` for sizes, `u32`
    /// for ids, `i32` for `listen()`). The row's bounds are chosen so this cannot fail for
    /// validated values; a failure is a table bug, not bad input.
    pub fn int_as<T: TryFrom<i64>>(&self, key: Key) -> T {
        let i = self.int(key);
        T::try_from(i).unwrap_or_else(|_| panic!("ferrocorn bug: setting {} = {i} does not fit its type", setting(key).name))
    }

    /// A duration setting (`Kind::Seconds`): `None` means no limit, which is what any value of
    /// `NO_LIMIT_SECS` (about 100 years) or more says. Whatever 0 means is the caller's to say.
    pub fn duration(&self, key: Key) -> Option<Duration> {
        let secs = self.int(key);
        if secs >= NO_LIMIT_SECS {
            return None;
        }
        // Validation refused negative durations, so this only guards against a table bug.
        Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
    }
    pub fn float(&self, key: Key) -> f64 {
        match self.get(key) {
            Value::Float(x) => *x,
            // Exact for every int a float setting could hold; a larger one is a table bug.
            Value::Int(i) => i32::try_from(*i).map(f64::from).unwrap_or_else(|_| table_bug(key, "a small number", self.get(key))),
            other => table_bug(key, "a number", other),
        }
    }
    pub fn bool(&self, key: Key) -> bool {
        match self.get(key) {
            Value::Bool(b) => *b,
            other => table_bug(key, "a boolean", other),
        }
    }
    /// String settings; `None` when unset (or, for `worker_class`, when a class object was given:
    /// see `py`).
    pub fn str(&self, key: Key) -> Option<&str> {
        match self.get(key) {
            Value::Str(s) => Some(s),
            Value::None | Value::Py(..) => None,
            other => table_bug(key, "a string", other),
        }
    }
    pub fn list(&self, key: Key) -> &[String] {
        match self.get(key) {
            Value::List(l) => l,
            Value::None => &[],
            other => table_bug(key, "a list", other),
        }
    }
    pub fn pairs(&self, key: Key) -> &[(String, String)] {
        match self.get(key) {
            Value::Pairs(p) => p,
            Value::None => &[],
            other => table_bug(key, "a dict", other),
        }
    }
    /// A hook or Python object setting; `None` when unset. `post_request` is always wrapped to
    /// take four arguments `(worker, req, environ, resp)`, as Gunicorn does.
    pub fn py(&self, key: Key) -> Option<&Py<PyAny>> {
        match self.get(key) {
            Value::Py(obj, _) => Some(obj),
            _ => None,
        }
    }

    /// Settings given a non-default value whose feature has not landed yet (refused at start).
    pub fn unsupported_in_use(&self) -> Vec<&'static str> {
        SETTINGS
            .iter()
            .filter(|s| !s.supported)
            .filter(|s| self.is_set(s.key) && self.values[s.key as usize] != self.defaults[s.key as usize])
            .map(|s| s.name)
            .collect()
    }

    /// `--print-config`: every setting as `name = value`, sorted by name, names padded to align.
    pub fn print_config(&self) -> String {
        docs::print_config(&self.values)
    }
}

#[cold]
fn table_bug(key: Key, wanted: &str, got: &Value) -> ! {
    panic!("ferrocorn bug: setting {} read as {wanted} but holds {got:?}", setting(key).name)
}

/// What the command line asked for.
pub enum Command {
    /// Serve with this config.
    Run(Config),
    /// `--check-config`: validate, import the app, exit.
    Check(Config),
    /// Help, version or `--print-config` already printed: exit with this code.
    Exit(i32),
}

/// Parses argv (argv[0] included), runs the config file, reads the environment, and merges.
pub fn load(py: Python<'_>, argv: &[String]) -> Result<Command, ConfigError> {
    let env: Env = std::env::vars().collect();
    load_with(py, argv, &env)
}

/// `load` with an explicit environment snapshot (for tests).
pub fn load_with(py: Python<'_>, argv: &[String], env: &Env) -> Result<Command, ConfigError> {
    // Like Gunicorn, both the command line and GUNICORN_CMD_ARGS are parsed before the config
    // file runs: either may say which file to read, and `-h`/`-v` must not run it.
    let cli = match crate::cli::parse(argv, Source::CommandLine)? {
        crate::cli::Parsed::Args(a) => a,
        crate::cli::Parsed::Exit(code) => return Ok(Command::Exit(code)),
    };
    let env_args = match env.get("GUNICORN_CMD_ARGS") {
        None => crate::cli::Args::default(),
        Some(raw) => {
            let mut words = vec!["ferrocorn".to_owned()];
            words.extend(shlex::split(raw).ok_or_else(|| ConfigError::EnvArgsSyntax(raw.clone()))?);
            match crate::cli::parse(&words, Source::EnvArgs)? {
                crate::cli::Parsed::Args(a) => a,
                crate::cli::Parsed::Exit(code) => return Ok(Command::Exit(code)),
            }
        }
    };

    let mut defaults = defaults::all(env)?;
    // Gunicorn names the processes after the app argument unless `proc_name` says otherwise.
    if let Some(app) = cli.positional.first() {
        defaults[Key::DefaultProcName as usize] = Value::Str(app.clone());
    }

    if let Some(Value::Str(paste)) = cli.layer.get(Key::Paste) {
        paste_defaults(&mut defaults, paste)?;
    }

    let location = [&cli.layer, &env_args.layer].into_iter().find_map(|l| match l.get(Key::Config) {
        Some(Value::Str(p)) => Some(p.clone()),
        _ => None,
    });
    let location = location.or_else(|| {
        let default = std::env::current_dir().ok()?.join("gunicorn.conf.py");
        default.exists().then(|| default.to_string_lossy().into_owned())
    });
    let file_layer = match location {
        Some(loc) => file::load(py, &loc)?,
        None => Layer::new(),
    };

    let mut cli_layer = cli.layer;
    // The positional APP_MODULE wins over `wsgi_app` from any other source.
    if let Some(app) = cli.positional.first() {
        cli_layer.set(Key::WsgiApp, Value::Str(app.clone()));
    }
    let cfg = Config::merge(
        defaults,
        &[(Source::ConfigFile, &file_layer), (Source::EnvArgs, &env_args.layer), (Source::CommandLine, &cli_layer)],
    );

    if cfg.str(Key::WsgiApp).is_none() && cfg.str(Key::Paste).is_none() {
        return Err(ConfigError::NoApp);
    }
    if cfg.bool(Key::PrintConfig) {
        // A closed pipe (`--print-config | head`) is not an error worth reporting.
        let _ = writeln!(std::io::stdout(), "{}", cfg.print_config());
        return Ok(Command::Exit(0));
    }
    if cfg.bool(Key::CheckConfig) {
        return Ok(Command::Check(cfg));
    }
    Ok(Command::Run(cfg))
}

/// `--paste FILE[#NAME]` on the command line, as Gunicorn reads it: the file must exist; it
/// names the processes, and is the logging configuration when it has a `[loggers]` section.
/// Both are defaults, so a config file or flag still overrides them.
fn paste_defaults(defaults: &mut [Value], paste: &str) -> Result<(), ConfigError> {
    let file = paste.split('#').next().unwrap_or(paste);
    let not_found = || ConfigError::PasteNotFound(file.to_owned());
    let abs = std::path::absolute(file).map_err(|_| not_found())?;
    let text = std::fs::read(&abs).map_err(|_| not_found())?;
    let abs = abs.to_string_lossy().into_owned();
    defaults[Key::DefaultProcName as usize] = Value::Str(abs.clone());
    if String::from_utf8_lossy(&text).lines().any(|l| l.trim() == "[loggers]") {
        defaults[Key::Logconfig as usize] = Value::Str(abs);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
