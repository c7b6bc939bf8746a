//! Text generated from the table: the markdown reference (`docs/settings.md`) and the
//! `--print-config` listing.

use std::fmt::Write;

use super::table::{DefaultValue, SETTINGS, Section};
use super::value::Value;

/// The settings reference, one section per heading, in table order within a section.
pub fn settings_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Settings\n\n");
    out.push_str(
        "<!-- Generated from src/config/table.rs; do not edit. Regenerate with\n     \
         FERROCORN_UPDATE_DOCS=1 cargo test settings_doc_is_current -->\n\n",
    );
    out.push_str(
        "ferrocorn reads the same settings as Gunicorn, under the same names: as command-line \
         flags, in `GUNICORN_CMD_ARGS`, and as module-level names in the config file \
         (`gunicorn.conf.py` by default). Later sources win: defaults, then the config file, then \
         `GUNICORN_CMD_ARGS`, then the command line.\n\n",
    );
    out.push_str(
        "Settings marked *not supported yet* are accepted so existing files still load, but \
         ferrocorn refuses to start when one of them is set to anything other than its default.\n",
    );
    for section in Section::ALL {
        let rows: Vec<_> = SETTINGS.iter().filter(|s| s.section == section).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(out, "\n## {}\n", section.title());
        for s in rows {
            let _ = write!(out, "\n### `{}`\n\n", s.name);
            if !s.supported {
                out.push_str("*Not supported yet.*\n\n");
            }
            if !s.flags.is_empty() {
                let flags: Vec<String> = s
                    .flags
                    .iter()
                    .map(|f| match (s.meta, s.action) {
                        (Some(m), super::table::Action::Store | super::table::Action::Append) => {
                            format!("`{f} {m}`")
                        }
                        (Some(m), super::table::Action::Optional(_)) => format!("`{f} [{m}]`"),
                        _ => format!("`{f}`"),
                    })
                    .collect();
                let _ = writeln!(out, "- Command line: {}", flags.join(", "));
            }
            let _ = writeln!(out, "- Default: {}", default_markdown(&s.default));
            if let Some(range) = s.kind.range_text() {
                let _ = writeln!(out, "- Accepted: {range}");
            }
            let _ = write!(out, "\n{} {}\n", s.short, s.long);
        }
    }
    out
}

fn default_markdown(d: &DefaultValue) -> String {
    match d {
        DefaultValue::Computed(doc) => (*doc).to_owned(),
        DefaultValue::Str("") => "`''`".into(),
        other => format!("`{}`", Value::from_default(other)),
    }
}

/// `name = value` for every setting, sorted by name, names padded like Gunicorn's output.
pub fn print_config(values: &[Value]) -> String {
    let mut rows: Vec<(&str, &Value)> = SETTINGS.iter().map(|s| (s.name, &values[s.key as usize])).collect();
    rows.sort_by_key(|(name, _)| *name);
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    rows.iter().map(|(n, v)| format!("{n:width$} = {v}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when `docs/settings.md` no longer matches the table. After changing the table, run
    /// `FERROCORN_UPDATE_DOCS=1 cargo test settings_doc_is_current` to rewrite the file, then
    /// review and commit it.
    #[test]
    fn settings_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/settings.md");
        let fresh = settings_markdown();
        if std::env::var_os("FERROCORN_UPDATE_DOCS").is_some() {
            std::fs::write(path, &fresh).expect("cannot write docs/settings.md");
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == fresh,
            "docs/settings.md is stale; regenerate it with FERROCORN_UPDATE_DOCS=1 cargo test settings_doc_is_current"
        );
    }

    #[test]
    fn doc_mentions_every_setting() {
        let md = settings_markdown();
        for s in SETTINGS {
            assert!(md.contains(&format!("### `{}`", s.name)), "{}", s.name);
        }
    }
}
