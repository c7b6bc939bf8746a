//! Worker classes: the names `-k/--worker-class` accepts and what each one means for the
//! worker. The Rust I/O engine is the same for every class; a class only chooses where the
//! application runs (see `executor.rs` and `docs/workers.md`).
//!
//! Names follow Gunicorn's `util.load_class`: a short name (`gevent`, optionally `#gevent`), an
//! entry-point form (`egg:gunicorn#gevent`), or a dotted class path. Gunicorn's own class paths
//! (`gunicorn.workers.ggevent.GeventWorker`) map to ours, so a `gunicorn.conf.py` keeps working.
//! A dotted path to any other class is refused: ferrocorn cannot run a Gunicorn `Worker`
//! subclass, because its workers are not Python objects.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerClass {
    /// One request at a time, the app on the engine's thread.
    Sync,
    /// A pool of `threads` Python threads.
    Gthread,
    /// Greenlets on a gevent hub, after `gevent.monkey.patch_all()`.
    Gevent,
    /// Green threads on an eventlet hub, after `eventlet.monkey_patch()`.
    Eventlet,
    /// A Tornado IOLoop: native `tornado.web.Application`s, or WSGI apps one at a time.
    Tornado,
}

/// Every class, in the order error messages list them.
pub const ALL: [WorkerClass; 5] =
    [WorkerClass::Sync, WorkerClass::Gthread, WorkerClass::Gevent, WorkerClass::Eventlet, WorkerClass::Tornado];

/// A `-k` value we cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassError {
    /// Gunicorn has it, ferrocorn does not (the ASGI worker: ferrocorn serves WSGI).
    NotProvided { name: String },
    /// Neither Gunicorn nor ferrocorn know the name.
    Unknown { name: String },
}

impl fmt::Display for ClassError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid = ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ");
        match self {
            ClassError::NotProvided { name } => write!(
                f,
                "worker class {name:?} is not provided by ferrocorn (it serves WSGI applications); \
                 valid classes are: {valid}"
            ),
            ClassError::Unknown { name } => write!(
                f,
                "unknown worker class {name:?}; valid classes are: {valid} (also as \
                 ferrocorn.workers.* or gunicorn.workers.* class paths, e.g. \
                 ferrocorn.workers.ggevent.GeventWorker)"
            ),
        }
    }
}

impl std::error::Error for ClassError {}

impl WorkerClass {
    /// The canonical short name (what `Using worker:` logs).
    pub fn name(self) -> &'static str {
        match self {
            WorkerClass::Sync => "sync",
            WorkerClass::Gthread => "gthread",
            WorkerClass::Gevent => "gevent",
            WorkerClass::Eventlet => "eventlet",
            WorkerClass::Tornado => "tornado",
        }
    }

    /// The Python class that drives an event-loop class, as (module, class); `None` for the
    /// classes the engine runs by itself.
    pub fn driver(self) -> Option<(&'static str, &'static str)> {
        match self {
            WorkerClass::Sync | WorkerClass::Gthread => None,
            WorkerClass::Gevent => Some(("ferrocorn.workers.ggevent", "GeventWorker")),
            WorkerClass::Eventlet => Some(("ferrocorn.workers.geventlet", "EventletWorker")),
            WorkerClass::Tornado => Some(("ferrocorn.workers.gtornado", "TornadoWorker")),
        }
    }

    /// `wsgi.multithread`: true where requests of one process interleave (Gunicorn sets it
    /// for gthread and for its async workers). Tornado runs a WSGI app to completion on its
    /// loop, so false, as in Tornado's `WSGIContainer`.
    pub fn multithread(self) -> bool {
        matches!(self, WorkerClass::Gthread | WorkerClass::Gevent | WorkerClass::Eventlet)
    }

    /// Reads a `-k` value; `threads` > 1 turns `sync` into `gthread`, as in Gunicorn.
    pub fn parse(spec: &str, threads: i64) -> Result<WorkerClass, ClassError> {
        let class = lookup(spec.trim())?;
        if class == WorkerClass::Sync && threads > 1 { Ok(WorkerClass::Gthread) } else { Ok(class) }
    }
}

fn short(name: &str) -> Option<WorkerClass> {
    Some(match name {
        "sync" => WorkerClass::Sync,
        "gthread" => WorkerClass::Gthread,
        // Gunicorn's gevent_wsgi/gevent_pywsgi differ from gevent only in using gevent's HTTP
        // parser; here the engine parses for every class, so they are the same class.
        "gevent" | "gevent_wsgi" | "gevent_pywsgi" => WorkerClass::Gevent,
        "eventlet" => WorkerClass::Eventlet,
        "tornado" => WorkerClass::Tornado,
        _ => return None,
    })
}

/// `MODULE.CLASS` under `gunicorn.workers` or `ferrocorn.workers`.
fn class_path(module: &str, class: &str) -> Option<WorkerClass> {
    Some(match (module, class) {
        ("sync", "SyncWorker") => WorkerClass::Sync,
        ("gthread", "ThreadWorker") => WorkerClass::Gthread,
        ("ggevent", "GeventWorker" | "GeventPyWSGIWorker") => WorkerClass::Gevent,
        ("geventlet", "EventletWorker") => WorkerClass::Eventlet,
        ("gtornado", "TornadoWorker") => WorkerClass::Tornado,
        _ => return None,
    })
}

fn lookup(spec: &str) -> Result<WorkerClass, ClassError> {
    let unknown = || ClassError::Unknown { name: spec.to_string() };
    let not_provided = || ClassError::NotProvided { name: spec.to_string() };
    if let Some(entry) = spec.strip_prefix("egg:") {
        // `egg:DIST#NAME`; without `#NAME` Gunicorn falls back to its default, sync.
        let (dist, name) = entry.rsplit_once('#').unwrap_or((entry, "sync"));
        if dist != "gunicorn" && dist != "ferrocorn" {
            return Err(unknown());
        }
        if name == "asgi" {
            return Err(not_provided());
        }
        return short(name).ok_or_else(unknown);
    }
    if !spec.contains('.') {
        let name = spec.trim_start_matches('#');
        if name == "asgi" {
            return Err(not_provided());
        }
        return short(name).ok_or_else(unknown);
    }
    let mut parts = spec.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("gunicorn" | "ferrocorn"), Some("workers"), Some(module), Some(class), None) => {
            if module == "gasgi" {
                return Err(not_provided());
            }
            class_path(module, class).ok_or_else(unknown)
        }
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkerClass::*;

    #[test]
    fn short_names_and_aliases() {
        for (spec, class) in [
            ("sync", Sync),
            ("#sync", Sync),
            ("gthread", Gthread),
            ("gevent", Gevent),
            ("gevent_pywsgi", Gevent),
            ("gevent_wsgi", Gevent),
            ("eventlet", Eventlet),
            ("tornado", Tornado),
            ("egg:gunicorn#gevent", Gevent),
            ("egg:ferrocorn#eventlet", Eventlet),
            ("egg:gunicorn", Sync),
        ] {
            assert_eq!(WorkerClass::parse(spec, 1), Ok(class), "{spec}");
        }
    }

    #[test]
    fn class_paths() {
        for (spec, class) in [
            ("gunicorn.workers.sync.SyncWorker", Sync),
            ("gunicorn.workers.gthread.ThreadWorker", Gthread),
            ("gunicorn.workers.ggevent.GeventWorker", Gevent),
            ("gunicorn.workers.ggevent.GeventPyWSGIWorker", Gevent),
            ("gunicorn.workers.geventlet.EventletWorker", Eventlet),
            ("gunicorn.workers.gtornado.TornadoWorker", Tornado),
            ("ferrocorn.workers.ggevent.GeventWorker", Gevent),
            ("ferrocorn.workers.gtornado.TornadoWorker", Tornado),
        ] {
            assert_eq!(WorkerClass::parse(spec, 1), Ok(class), "{spec}");
        }
    }

    #[test]
    fn threads_turn_sync_into_gthread_only() {
        assert_eq!(WorkerClass::parse("sync", 4), Ok(Gthread));
        assert_eq!(WorkerClass::parse("gunicorn.workers.sync.SyncWorker", 2), Ok(Gthread));
        // Gunicorn ignores --threads for the async classes.
        assert_eq!(WorkerClass::parse("gevent", 4), Ok(Gevent));
        assert_eq!(WorkerClass::parse("tornado", 4), Ok(Tornado));
    }

    #[test]
    fn refusals_name_the_valid_classes() {
        for spec in ["Gevent", "geventt", "myapp.workers.Mine", "gunicorn.workers.ggevent.Nope", "egg:other#gevent", ""] {
            let err = WorkerClass::parse(spec, 1).unwrap_err();
            assert!(matches!(err, ClassError::Unknown { .. }), "{spec}");
            assert!(err.to_string().contains("sync, gthread, gevent, eventlet, tornado"), "{err}");
        }
        for spec in ["asgi", "gunicorn.workers.gasgi.ASGIWorker", "egg:gunicorn#asgi"] {
            assert!(matches!(WorkerClass::parse(spec, 1), Err(ClassError::NotProvided { .. })), "{spec}");
        }
    }
}
