//! The command line and `GUNICORN_CMD_ARGS`, parsed into a config layer.
//!
//! The clap parser is built at run time from the settings table, so a flag exists exactly when a
//! table row declares it. Values arrive as text and are validated by the table's rules, which
//! gives the same error for a bad `-w` whether it came from argv or the environment.

use std::io::Write;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config::{self, Action, ConfigError, DefaultValue, Layer, SETTINGS, Section, Setting, Source, Value};

/// What one argument vector said.
#[derive(Debug, Default)]
pub struct Args {
    pub layer: Layer,
    /// Positional arguments; the first is `APP_MODULE`, the rest are ignored as in Gunicorn.
    pub positional: Vec<String>,
}

pub enum Parsed {
    Args(Args),
    /// Help, version or a usage error was printed; exit with this code.
    Exit(i32),
}

const POSITIONAL: &str = "APP_MODULE";
const VERSION: &str = "version";

/// Builds the parser: one argument per table row with flags, grouped by section in `--help`.
pub fn command() -> Command {
    let mut cmd = Command::new("ferrocorn")
        .bin_name("ferrocorn")
        .about("A pre-fork WSGI HTTP server with a Rust core, compatible with Gunicorn.")
        .override_usage("ferrocorn [OPTIONS] [APP_MODULE]")
        .disable_version_flag(true)
        // argparse lets a repeated flag overwrite the earlier value, and accepts unambiguous
        // prefixes of long options (`--work 4`).
        .args_override_self(true)
        .infer_long_args(true)
        .arg(Arg::new(VERSION).short('v').long("version").action(ArgAction::SetTrue).help("Print the version and exit"))
        .arg(Arg::new(POSITIONAL).num_args(0..).action(ArgAction::Append).help("The WSGI application, as MODULE:VARIABLE"));
    for section in Section::ALL {
        for s in SETTINGS.iter().filter(|s| s.section == section && !s.flags.is_empty()) {
            cmd = cmd.arg(arg_for(s).help_heading(section.title()));
        }
    }
    cmd
}

fn arg_for(s: &'static Setting) -> Arg {
    let mut arg = Arg::new(s.name).help(format!("{} [{}]", s.short, default_label(s)));
    let mut longs = Vec::new();
    for flag in s.flags {
        match flag.strip_prefix("--") {
            Some(long) => longs.push(long),
            None => {
                if let Some(c) = flag.strip_prefix('-').and_then(|f| f.chars().next()) {
                    arg = arg.short(c);
                }
            }
        }
    }
    if let Some((first, rest)) = longs.split_first() {
        arg = arg.long(*first).visible_aliases(rest.iter().copied());
    }
    if let Some(meta) = s.meta {
        arg = arg.value_name(meta);
    }
    // Let `-t -1` reach the validator, which explains what is wrong with it.
    if s.kind.is_int() {
        arg = arg.allow_negative_numbers(true);
    }
    match s.action {
        Action::Store => arg.action(ArgAction::Set).num_args(1),
        Action::Append => arg.action(ArgAction::Append).num_args(1),
        Action::True | Action::False => arg.action(ArgAction::SetTrue),
        Action::Optional(konst) => arg.action(ArgAction::Set).num_args(0..=1).default_missing_value(konst),
    }
}

/// The default as `--help` shows it, in Gunicorn's `short [default]` style.
pub fn default_label(s: &Setting) -> String {
    match s.default {
        DefaultValue::None => "None".into(),
        DefaultValue::Bool(b) => if b { "True" } else { "False" }.into(),
        DefaultValue::Int(i) => i.to_string(),
        DefaultValue::Str(v) => v.to_owned(),
        ref d @ (DefaultValue::List(_) | DefaultValue::Pairs(_)) => Value::from_default(d).to_string(),
        DefaultValue::Computed(doc) => doc.replace('`', ""),
    }
}

/// Parses one argument vector (argv[0] included). Values are validated with `source` named in
/// any error; help and version are printed here.
pub fn parse(argv: &[String], source: Source) -> Result<Parsed, ConfigError> {
    let matches = match command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            // Help goes to stdout with status 0; usage errors to stderr with status 2, like
            // argparse. Printing can only fail if the stream is gone, and then there is no one
            // left to tell.
            let _ = e.print();
            return Ok(Parsed::Exit(e.exit_code()));
        }
    };
    if matches.get_flag(VERSION) {
        let _ = writeln!(std::io::stdout(), "ferrocorn (version {})", env!("CARGO_PKG_VERSION"));
        return Ok(Parsed::Exit(0));
    }
    let mut args = Args {
        layer: Layer::new(),
        positional: matches.get_many::<String>(POSITIONAL).map(|v| v.cloned().collect()).unwrap_or_default(),
    };
    for s in SETTINGS.iter().filter(|s| !s.flags.is_empty()) {
        if let Some(v) = value_of(&matches, s, source)? {
            args.layer.set(s.key, v);
        }
    }
    Ok(Parsed::Args(args))
}

fn value_of(m: &ArgMatches, s: &'static Setting, source: Source) -> Result<Option<Value>, ConfigError> {
    match s.action {
        Action::True => Ok(m.get_flag(s.name).then_some(Value::Bool(true))),
        Action::False => Ok(m.get_flag(s.name).then_some(Value::Bool(false))),
        Action::Store | Action::Optional(_) => {
            m.get_one::<String>(s.name).map(|raw| config::value_from_str(s, raw, source)).transpose()
        }
        Action::Append => {
            let Some(items) = m.get_many::<String>(s.name) else { return Ok(None) };
            let mut list = Vec::new();
            for raw in items {
                if let Value::List(mut one) = config::value_from_str(s, raw, source)? {
                    list.append(&mut one);
                }
            }
            Ok(Some(Value::List(list)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Key;

    fn args(words: &[&str]) -> Args {
        let argv: Vec<String> = std::iter::once("ferrocorn").chain(words.iter().copied()).map(String::from).collect();
        match parse(&argv, Source::CommandLine) {
            Ok(Parsed::Args(a)) => a,
            Ok(Parsed::Exit(c)) => panic!("exited {c}"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn parser_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn flags_map_to_settings() {
        let a = args(&[
            "-w",
            "3",
            "-b",
            "a:1",
            "--bind=b:2",
            "--preload",
            "--no-sendfile",
            "app:wsgi",
            "--proxy-protocol",
            "-t",
            "5",
            "--timeout",
            "7",
        ]);
        assert_eq!(a.layer.get(Key::Workers), Some(&Value::Int(3)));
        assert_eq!(a.layer.get(Key::Bind), Some(&Value::List(vec!["a:1".into(), "b:2".into()])));
        assert_eq!(a.layer.get(Key::Preload), Some(&Value::Bool(true)));
        assert_eq!(a.layer.get(Key::Sendfile), Some(&Value::Bool(false)));
        assert_eq!(a.layer.get(Key::ProxyProtocol), Some(&Value::Str("auto".into())));
        assert_eq!(a.layer.get(Key::Timeout), Some(&Value::Int(7)));
        assert_eq!(a.layer.get(Key::Threads), None);
        assert_eq!(a.positional, vec!["app:wsgi".to_string()]);
    }

    #[test]
    fn aliases_prefixes_and_odd_flags() {
        let a = args(&["--log-file", "x.log", "--limit-request-field_size", "10", "--gracef", "2", "-w4", "-m", "022"]);
        assert_eq!(a.layer.get(Key::Errorlog), Some(&Value::Str("x.log".into())));
        assert_eq!(a.layer.get(Key::LimitRequestFieldSize), Some(&Value::Int(10)));
        assert_eq!(a.layer.get(Key::Workers), Some(&Value::Int(4)));
        assert_eq!(a.layer.get(Key::Umask), Some(&Value::Int(0o22)));
        assert_eq!(a.layer.get(Key::GracefulTimeout), Some(&Value::Int(2)));
    }

    #[test]
    fn bad_values_are_config_errors() {
        let argv: Vec<String> = ["ferrocorn", "-w", "abc"].map(String::from).to_vec();
        let e = parse(&argv, Source::EnvArgs).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("Error: invalid value for workers (-w/--workers) in GUNICORN_CMD_ARGS: 'abc' is not an integer")
        );
        let argv: Vec<String> = ["ferrocorn", "-t", "-5"].map(String::from).to_vec();
        assert!(parse(&argv, Source::CommandLine).is_err());
    }

    #[test]
    fn help_is_grouped_by_section() {
        let help = command().render_help().to_string();
        assert!(help.contains("Worker Processes:"), "{help}");
        assert!(help.contains("-w, --workers <INT>"), "{help}");
    }
}
