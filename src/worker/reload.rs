//! `--reload`: poll the files of every imported module (and `reload_extra_files`) once a second
//! and, when one changes, ask the master for a fresh generation of workers. The master starts
//! the new workers first and retires this one only when they have booted, so an edit that
//! breaks the code is logged while the running workers keep serving.
//!
//! Polling rather than inotify: it needs no extra package, sees files on any filesystem, and a
//! stat of a few hundred files per second is negligible for a development setting.

use super::Shared;
use crate::log_info;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

pub async fn watch(sh: Rc<Shared>, extra: Vec<PathBuf>) {
    let patterns: Vec<String> = extra.iter().map(|p| p.display().to_string()).collect();
    let mut known: HashMap<String, SystemTime> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let files = Python::attach(|py| -> PyResult<Vec<String>> {
            let m = py.import("ferrocorn._hooks")?;
            let mut files: Vec<String> = m.call_method0("module_files")?.extract()?;
            if !patterns.is_empty() {
                files.extend(m.call_method1("expand_globs", (patterns.clone(),))?.extract::<Vec<String>>()?);
            }
            Ok(files)
        })
        .unwrap_or_default();
        let mut changed = None;
        for f in files {
            let Ok(mtime) = std::fs::metadata(&f).and_then(|m| m.modified()) else { continue };
            match known.insert(f.clone(), mtime) {
                Some(old) if old != mtime => changed = changed.or(Some(f)),
                _ => {}
            }
        }
        if let Some(f) = changed {
            log_info!("Worker reloading: {f} modified");
            sh.heartbeat.request_reload();
        }
    }
}
