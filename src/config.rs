//! Command line and `--config` TOML. Flags override the file; the file overrides defaults.
//! Every problem is a [`ConfigError`], which `main` turns into exit code 2 with a message naming
//! the file, the line where known, and the problem.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::limits::{parse_duration_value, parse_size, Limits, Timeouts};

#[derive(Debug, Parser)]
#[command(
    name = "medtap",
    version,
    about = "Passive network sensor for hospital networks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level on standard error (default info; without it RUST_LOG directives apply).
    #[arg(long = "log-level", global = true, value_enum)]
    pub log_level: Option<crate::logging::LogLevel>,
    /// Log format on standard error: text (key=value fields) or json (one object per line).
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: crate::logging::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay pcap/pcapng files or folders of them through the sensor.
    Replay(ReplayArgs),
    /// Capture live from one or more interfaces until SIGINT/SIGTERM, then flush and exit 0.
    Live(LiveArgs),
    /// Work with signature files.
    Signatures {
        #[command(subcommand)]
        action: SignaturesAction,
    },
    /// Print the device inventory kept under --state-dir.
    Inventory(InventoryArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InventoryFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The state directory a replay or live capture kept (its `medtap.db`).
    #[arg(long = "state-dir")]
    pub state_dir: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: InventoryFormat,
    /// Operator fingerprint signatures, as for replay/live (identification is recomputed).
    #[arg(long)]
    pub signatures: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SignaturesAction {
    /// Validate the shipped signatures plus an operator directory: every problem is printed as
    /// `file:line: problem` and the exit code is 2.
    Check {
        /// An operator signature directory (its `fingerprint/` sub-directory, or its `*.toml`).
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on (repeat for several: -i eth1 -i eth2).
    #[arg(short = 'i', long = "interface", required = true)]
    pub interfaces: Vec<String>,
    /// Bytes captured per packet.
    #[arg(long, default_value_t = 65_535, value_parser = clap::value_parser!(i32).range(64..=262_144))]
    pub snaplen: i32,
    /// Kernel capture buffer per interface, in MiB.
    #[arg(long = "buffer-mib", default_value_t = 64, value_parser = clap::value_parser!(i32).range(1..=2048))]
    pub buffer_mib: i32,
    /// Do not put the interfaces in promiscuous mode.
    #[arg(long = "no-promisc")]
    pub no_promisc: bool,
    /// Let the kernel batch packets (libpcap without immediate mode: a packed ring that holds
    /// far more packets per MiB on high-MTU or offloading interfaces; packets wait up to 100 ms).
    #[arg(long = "no-immediate")]
    pub no_immediate: bool,
    /// Once the interfaces are open and --listen is bound, switch to this user (its uid, gid and
    /// supplementary groups); refuse to run on if that fails.
    #[arg(long)]
    pub user: Option<String>,
    /// Seconds between `stats` events.
    #[arg(long = "stats-interval", default_value = "60s")]
    pub stats_interval: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files, or folders walked recursively in sorted order.
    #[arg(required = true)]
    pub pcaps: Vec<PathBuf>,
    /// Keep serving --listen for this long after the replay ends (e.g. 30s), so a scraper
    /// can collect the final figures.
    #[arg(long)]
    pub linger: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args, Default)]
pub struct CommonArgs {
    /// NDJSON event log ('-' = standard output). Appended to if it exists.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Prometheus text exposition written at the end.
    #[arg(long = "metrics-out")]
    pub metrics_out: Option<PathBuf>,
    /// HTTP endpoint for /metrics and /healthz (live default 127.0.0.1:9860; replay: off unless given).
    #[arg(long)]
    pub listen: Option<String>,
    /// Protect the HTTP endpoint: TLS and basic-auth/bearer-token users, in the YAML format of
    /// Prometheus's exporter-toolkit web config (tls_server_config, basic_auth_users,
    /// bearer_token_file).
    #[arg(long = "web-config")]
    pub web_config: Option<PathBuf>,
    /// Worker threads (default: available cores - 1, at least 1).
    #[arg(long)]
    pub workers: Option<usize>,
    /// A BPF filter applied to the capture.
    #[arg(long)]
    pub bpf: Option<String>,
    /// SQLite state (device inventory, baselines) kept under this directory; none = in memory.
    #[arg(long = "state-dir")]
    pub state_dir: Option<PathBuf>,
    /// Device inventory JSON, written at the end (replay) or every minute (live).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Operator fingerprint signatures directory, added to the shipped ones.
    #[arg(long)]
    pub signatures: Option<PathBuf>,
    /// A p0f v3 fingerprint database (`p0f.fp`) for TCP SYN / SYN+ACK signatures.
    #[arg(long = "p0f-db")]
    pub p0f_db: Option<PathBuf>,
    /// TOML configuration file; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Show a progress bar (default: only when standard error is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,
    /// Never show a progress bar.
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    /// Print the summary as JSON on standard error instead of text.
    #[arg(long = "summary-json")]
    pub summary_json: bool,
    /// Behaviour baseline learning time per device, in packet time (e.g. 90s, 7d; default 7d).
    #[arg(long = "learning-period")]
    pub learning_period: Option<String>,
}

/// A problem with flags or configuration: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The `--config` file. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    events: Option<PathBuf>,
    metrics_out: Option<PathBuf>,
    listen: Option<String>,
    web_config: Option<PathBuf>,
    workers: Option<usize>,
    bpf: Option<String>,
    state_dir: Option<PathBuf>,
    inventory: Option<PathBuf>,
    signatures: Option<PathBuf>,
    p0f_db: Option<PathBuf>,
    limits: Option<toml::Table>,
    timeouts: Option<toml::Table>,
    learning_period: Option<String>,
}

/// Everything a run needs, merged and validated.
#[derive(Debug)]
pub struct Settings {
    pub events: Option<PathBuf>,
    pub metrics_out: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    /// `--web-config`, loaded and checked.
    pub web: Option<crate::webconfig::WebConfig>,
    pub workers: usize,
    pub bpf: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub signatures: Option<PathBuf>,
    pub p0f_db: Option<PathBuf>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub progress: bool,
    pub summary_json: bool,
    /// Seconds of packet time.
    pub learning_period: u64,
}

pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .saturating_sub(1)
        .max(1)
}

/// Line (1-based) of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|t| t.lines().count().max(1))
        .unwrap_or(1)
}

fn load_file(path: &Path) -> Result<(FileConfig, String), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
    match toml::from_str::<FileConfig>(&text) {
        Ok(c) => Ok((c, text)),
        Err(e) => {
            // serde's "unknown field `x`" errors span the whole table: find the key's line.
            let key_line = || {
                let key = e.message().split('`').nth(1)?;
                text.lines()
                    .position(|l| l.trim_start().starts_with(key))
                    .map(|i| i + 1)
            };
            let line = key_line()
                .or_else(|| e.span().map(|s| line_of(&text, s.start)))
                .unwrap_or(1);
            // Name the key when the message does not ("invalid type: ..." does not).
            let key = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !e.message().contains(*k));
            let what = key.map(|k| format!("{k}: ")).unwrap_or_default();
            Err(ConfigError(format!(
                "{}:{line}: {what}{}",
                path.display(),
                e.message()
            )))
        }
    }
}

impl Settings {
    pub fn from_args(a: &CommonArgs, stderr_is_terminal: bool) -> Result<Settings, ConfigError> {
        let (file, text, path) = match &a.config {
            Some(p) => {
                let (c, t) = load_file(p)?;
                (c, t, p.display().to_string())
            }
            None => (FileConfig::default(), String::new(), String::new()),
        };
        let find_line = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|i| i + 1)
                .unwrap_or(1)
        };
        let mut limits = Limits::default();
        if let Some(t) = &file.limits {
            limits.apply(t, "limits", parse_size).map_err(|e| {
                let key = e
                    .split([' ', ':'])
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("limits.");
                ConfigError(format!("{path}:{}: {e}", find_line(key)))
            })?;
        }
        let mut timeouts = Timeouts::default();
        if let Some(t) = &file.timeouts {
            timeouts
                .apply(t, "timeouts", parse_duration_value)
                .map_err(|e| {
                    let key = e
                        .split([' ', ':'])
                        .next()
                        .unwrap_or("")
                        .trim_start_matches("timeouts.");
                    ConfigError(format!("{path}:{}: {e}", find_line(key)))
                })?;
        }
        // A bad value names the flag when it came from one, else the file and line.
        let origin = |flag: bool, key: &str| {
            if flag {
                format!("--{key}")
            } else {
                format!("{path}:{}: {key}", find_line(key))
            }
        };
        let workers = a.workers.or(file.workers).unwrap_or_else(default_workers);
        if !(1..=256).contains(&workers) {
            return Err(ConfigError(format!(
                "{} {workers}: must be between 1 and 256",
                origin(a.workers.is_some(), "workers")
            )));
        }
        let listen = match a.listen.clone().or(file.listen) {
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|_| {
                ConfigError(format!(
                    "{} '{s}': not an address:port (e.g. 127.0.0.1:9860)",
                    origin(a.listen.is_some(), "listen")
                ))
            })?),
            None => None,
        };
        let web = match a.web_config.clone().or(file.web_config) {
            Some(p) => Some(crate::webconfig::load(&p)?),
            None => None,
        };
        let progress = if a.no_progress {
            false
        } else {
            a.progress || stderr_is_terminal
        };
        Ok(Settings {
            events: a.events.clone().or(file.events),
            metrics_out: a.metrics_out.clone().or(file.metrics_out),
            listen,
            web,
            workers,
            bpf: a.bpf.clone().or(file.bpf),
            state_dir: a.state_dir.clone().or(file.state_dir),
            inventory: a.inventory.clone().or(file.inventory),
            signatures: a.signatures.clone().or(file.signatures),
            p0f_db: a.p0f_db.clone().or(file.p0f_db),
            limits,
            timeouts,
            progress,
            summary_json: a.summary_json,
            learning_period: match a.learning_period.clone().or(file.learning_period) {
                Some(l) => crate::detect::rules::parse_duration_str(&l)
                    .ok()
                    .filter(|&d| d > 0)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "--learning-period {l:?}: not a duration above 0 (e.g. 90s, 15m, 2h, 7d)"
                        ))
                    })?,
                None => 7 * 86_400,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_with_config(text: &str) -> (CommonArgs, tempfile::NamedTempFile) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        let a = CommonArgs {
            config: Some(f.path().to_path_buf()),
            ..CommonArgs::default()
        };
        (a, f)
    }

    #[test]
    fn config_file_values_and_flag_override() {
        let (mut a, _f) =
            args_with_config("workers = 3\n[limits]\nmax_flows = 2048\n[timeouts]\nudp = \"5m\"\n");
        let s = Settings::from_args(&a, false).unwrap();
        assert_eq!(s.workers, 3);
        assert_eq!(s.limits.max_flows, 2048);
        assert_eq!(s.timeouts.udp, 300);
        a.workers = Some(1);
        assert_eq!(Settings::from_args(&a, false).unwrap().workers, 1);
    }

    #[test]
    fn web_config_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("web.yml");
        std::fs::write(&web, "bearer_token_file: tok\n").unwrap();
        std::fs::write(dir.path().join("tok"), "abc\n").unwrap();
        let (a, _f) = args_with_config(&format!("web_config = {:?}\n", web.display().to_string()));
        let s = Settings::from_args(&a, false).unwrap();
        let w = s.web.expect("web config loaded");
        assert!(w.auth.required() && w.tls.is_none());
        assert!(w.auth.check(Some(b"Bearer abc")));
        std::fs::write(&web, "bearer_token_file: missing\n").unwrap();
        let e = Settings::from_args(&a, false).unwrap_err().0;
        assert!(e.contains("web.yml") && e.contains("missing"), "{e}");
    }

    #[test]
    fn config_errors_name_file_and_line() {
        let (a, f) = args_with_config("workers = 2\n\n[limits]\nmax_flows = 3\n");
        let e = Settings::from_args(&a, false).unwrap_err().0;
        assert!(e.starts_with(&format!("{}:4:", f.path().display())), "{e}");
        let (a, f) = args_with_config("workers = 2\nbogus = 1\n");
        let e = Settings::from_args(&a, false).unwrap_err().0;
        assert!(e.starts_with(&format!("{}:2:", f.path().display())), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }
}
