//! Structured logs on standard error through `tracing`: `--log-level` (error, warn, info,
//! debug, trace; default info) or, without it, `RUST_LOG` directives (e.g.
//! `RUST_LOG=medtap::server=debug,info`); `--log-format text` (the default: timestamp, level,
//! module, message, then `key=value` fields) or `json` (one object per line with `timestamp`,
//! `level`, `target`, `message` and the fields, for journald or a log shipper).
//!
//! Logs say what the process does (capture started or stopped, endpoint, privilege drop,
//! reloads, failures); they never carry a packet's content, an address from a packet, a
//! password or a token. Usage errors (exit 2) are still printed plainly by `main`.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Install the global subscriber. Returns a note when `RUST_LOG` could not be used (logged by
/// the caller once logging works).
pub fn init(level: Option<LogLevel>, format: LogFormat, ansi: bool) -> Option<String> {
    let mut note = None;
    let filter = match level {
        Some(l) => EnvFilter::new(l.as_str()),
        None => match std::env::var("RUST_LOG") {
            Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
                Ok(f) => f,
                Err(e) => {
                    note = Some(format!("RUST_LOG '{v}' ignored: {e}"));
                    EnvFilter::new("info")
                }
            },
            _ => EnvFilter::new("info"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let done = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    if let Err(e) = done {
        note = Some(format!("logging already set up: {e}"));
    }
    note
}
