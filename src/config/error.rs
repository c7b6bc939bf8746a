//! Everything that can be wrong with a configuration, as one enum.
//!
//! `Display` is the complete message the command prints (starting with `Error: `) before exiting
//! with status 1, like Gunicorn's `Error: ...` lines.

use std::fmt;

use super::table::Setting;

/// Where a value came from, so a message can point at the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    ConfigFile,
    /// The `GUNICORN_CMD_ARGS` environment variable.
    EnvArgs,
    CommandLine,
}

impl Source {
    fn suffix(self) -> &'static str {
        match self {
            Source::Default | Source::CommandLine => "",
            Source::ConfigFile => " in the config file",
            Source::EnvArgs => " in GUNICORN_CMD_ARGS",
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    /// A value that fails its setting's rule.
    Invalid {
        setting: &'static str,
        flags: String,
        source: Source,
        /// The offending value as the user wrote it (Python `repr` for config-file objects).
        value: String,
        /// What was expected, phrased to follow "is not ...", e.g. "an integer".
        problem: String,
    },
    /// An environment variable that feeds a default (`WEB_CONCURRENCY`, ...) is malformed.
    BadEnv {
        var: &'static str,
        value: String,
        problem: String,
    },
    /// `GUNICORN_CMD_ARGS` could not be split like a shell would (an unclosed quote).
    EnvArgsSyntax(String),
    ConfigNotFound(String),
    /// The `--paste` configuration file does not exist.
    PasteNotFound(String),
    /// The config file is not valid Python.
    ConfigSyntax {
        file: String,
        line: Option<u64>,
        message: String,
    },
    /// Running (or importing) the config file raised; the formatted traceback.
    ConfigRaised {
        file: String,
        traceback: String,
    },
    /// Neither `APP_MODULE` nor `wsgi_app` names an application.
    NoApp,
    /// The interpreter failed in a way that is not the user's config (should not happen).
    Python(String),
}

impl ConfigError {
    pub fn invalid(s: &Setting, source: Source, value: String, problem: impl Into<String>) -> Self {
        ConfigError::Invalid { setting: s.name, flags: s.flags_label(), source, value, problem: problem.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid { setting, flags, source, value, problem } => {
                write!(f, "Error: invalid value for {setting}")?;
                if !flags.is_empty() {
                    write!(f, " ({flags})")?;
                }
                write!(f, "{}: {value} {problem}", source.suffix())
            }
            ConfigError::BadEnv { var, value, problem } => {
                write!(f, "Error: invalid value for environment variable {var}: {value:?} {problem}")
            }
            ConfigError::EnvArgsSyntax(v) => {
                write!(f, "Error: GUNICORN_CMD_ARGS cannot be split into arguments (unbalanced quotes?): {v:?}")
            }
            ConfigError::ConfigNotFound(p) => write!(f, "Error: config file {p:?} doesn't exist"),
            ConfigError::PasteNotFound(p) => write!(f, "Error: PasteDeploy configuration file {p:?} not found (--paste)"),
            ConfigError::ConfigSyntax { file, line, message } => match line {
                Some(n) => write!(f, "Error: syntax error in config file {file}, line {n}: {message}"),
                None => write!(f, "Error: syntax error in config file {file}: {message}"),
            },
            ConfigError::ConfigRaised { file, traceback } => {
                write!(f, "Error: failed to read config file: {file}\n{}", traceback.trim_end())
            }
            ConfigError::NoApp => f.write_str("Error: No application module specified."),
            ConfigError::Python(m) => write!(f, "Error: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}
