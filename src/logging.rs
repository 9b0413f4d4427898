//! Where the library's diagnostics go. ONNX Runtime writes its own log lines (model warnings,
//! for example); they come here instead of the host's stderr, and go to the callback a host
//! set ([`set_callback`], `reid_logging_set_callback` from C), else to the `log` crate, which
//! prints nothing unless a Rust host installed a logger.

use std::sync::RwLock;

/// How severe a log line is, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detailed tracing.
    Verbose,
    /// Information.
    Info,
    /// Something may be wrong.
    Warning,
    /// Something failed.
    Error,
    /// The source cannot continue.
    Fatal,
}

/// Receives log lines: their level and text (`source: message`).
pub type Callback = Box<dyn Fn(Level, &str) + Send + Sync>;

struct Sink {
    callback: Callback,
    min_level: Level,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sends every later log line at `min_level` or above to `callback`; `None` goes back to the
/// `log` crate.
pub fn set_callback(callback: Option<Callback>, min_level: Level) {
    let sink = callback.map(|callback| Sink {
        callback,
        min_level,
    });
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Reports one line from `source` (e.g. `onnxruntime`).
pub fn emit(level: Level, source: &str, message: &str) {
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
    match sink.as_ref() {
        Some(sink) if level >= sink.min_level => {
            (sink.callback)(level, &format!("{source}: {message}"))
        }
        Some(_) => {}
        None => {
            let level = match level {
                Level::Verbose => log::Level::Trace,
                Level::Info => log::Level::Info,
                Level::Warning => log::Level::Warn,
                Level::Error | Level::Fatal => log::Level::Error,
            };
            log::log!(target: "reid", level, "{source}: {message}");
        }
    }
}
