//! medtap's binary: parse the command line, build the pipeline, map the outcome to an exit code
//! (0 ok, 1 runtime failure, 2 bad usage, configuration or input path).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use medtap::config::{Cli, Command, ConfigError, Settings};
use medtap::metrics::Metrics;
use medtap::pipeline::{self, Summary};
use medtap::protocols::AppProto;
use medtap::stats::Counter;

/// jemalloc instead of glibc's malloc: on a replay of the benchmark capture, about a sixth less
/// CPU in all (glibc's per-thread arenas and chunk coalescing cost the worker and the central
/// thread, which hand each other millions of small strings and vectors), at the same peak RSS
/// with the options compiled into it (`.cargo/config.toml`: one arena, 300 ms decay).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(note) = medtap::logging::init(
        cli.log_level,
        cli.log_format,
        std::io::stderr().is_terminal(),
    ) {
        tracing::warn!("{note}");
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<ConfigError>().is_some() {
                eprintln!("medtap: {e:#}");
                ExitCode::from(2)
            } else {
                tracing::error!("stopped: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Live(args) => run_live(args),
        Command::Inventory(args) => run_inventory(args),
        Command::Signatures {
            action: medtap::config::SignaturesAction::Check { dir },
        } => {
            use medtap::fingerprint::signatures::Signatures;
            let fp = Signatures::load(dir.as_deref());
            let rules = medtap::detect::RuleSet::load(dir.as_deref());
            match (fp, rules) {
                (Ok(s), Ok(r)) => {
                    println!(
                        "signatures ok: {} rules, {} evidence weights, {} end-of-life entries; {} detection rules, {} anomaly thresholds",
                        s.rules.len(),
                        s.weights.len(),
                        s.eol.len(),
                        r.rules.len(),
                        r.anomalies.len()
                    );
                    Ok(())
                }
                (fp, rules) => {
                    let mut n = 0;
                    for errors in [fp.err(), rules.err()].into_iter().flatten() {
                        for e in &errors.0 {
                            eprintln!("{e}");
                        }
                        n += errors.0.len();
                    }
                    Err(ConfigError(format!("{n} problem(s) in the signatures")).into())
                }
            }
        }
        Command::Replay(args) => {
            let settings = Settings::from_args(&args.common, std::io::stderr().is_terminal())?;
            if let Some(l) = &args.linger {
                medtap::limits::parse_duration(l)
                    .map_err(|e| ConfigError(format!("--linger: {e}")))?;
            }
            let files =
                medtap::capture::collect(&args.pcaps).map_err(|e| ConfigError(format!("{e:#}")))?;
            for (p, why) in &files.skipped {
                tracing::warn!(file = %p.display(), reason = %why, "skipping");
            }
            if let Some(bpf) = &settings.bpf {
                // Validate the filter once, up front, so a bad one is a usage error.
                if let Some(first) = files.files.first() {
                    medtap::capture::FileReader::open(first, Some(bpf))
                        .map_err(|e| ConfigError(format!("{e:#}")))?;
                }
            }
            let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
            let opts = pipeline_options(&settings, settings.progress)?;
            let _server = start_server(&settings, &metrics, &opts)?;
            let summary = pipeline::replay(&files, &opts, &metrics)?;
            write_metrics(&settings, &metrics)?;
            print_summary(&summary, metrics.alerts_total(), settings.summary_json);
            if let (Some(l), Some(_)) = (&args.linger, &_server) {
                let secs = medtap::limits::parse_duration(l)
                    .map_err(|e| ConfigError(format!("--linger: {e}")))?;
                std::thread::sleep(std::time::Duration::from_secs(secs));
            }
            Ok(())
        }
    }
}

fn run_live(args: medtap::config::LiveArgs) -> anyhow::Result<()> {
    use std::sync::atomic::AtomicBool;
    let mut settings = Settings::from_args(&args.common, false)?;
    if settings.listen.is_none() && args.common.listen.is_none() {
        settings.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9860)));
    }
    let stats_every = medtap::limits::parse_duration(&args.stats_interval)
        .map_err(|e| ConfigError(format!("--stats-interval: {e}")))?;
    let user = match &args.user {
        Some(name) => Some(medtap::privilege::lookup(name)?),
        None => None,
    };
    let mut sources = Vec::new();
    for name in &args.interfaces {
        let s = medtap::capture::LiveSettings {
            interface: name.clone(),
            snaplen: args.snaplen,
            buffer_bytes: args.buffer_mib.saturating_mul(1 << 20),
            promisc: !args.no_promisc,
            bpf: settings.bpf.clone(),
            immediate: !args.no_immediate,
        };
        let src = medtap::capture::LiveSource::open(&s)?;
        sources.push((s, src));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
    let opts = pipeline_options(&settings, false)?;
    let server = start_server(&settings, &metrics, &opts)?;
    // SIGHUP: reload the signatures and the detection rules (a bad set is logged and the old
    // one kept).
    let mut reloader = medtap::reload::Reloader::new(&metrics)?;
    if let Some(sigs) = &opts.intel.signatures {
        reloader.add(
            "signatures",
            medtap::reload::signatures_action(settings.signatures.clone(), sigs.clone()),
        );
    }
    if let Some(rules) = &opts.intel.rules {
        reloader.add(
            "rules",
            medtap::reload::rules_action(settings.signatures.clone(), rules.clone()),
        );
    }
    let _reload = reloader.spawn_on_sighup(stop.clone())?;
    if let Some(u) = &user {
        medtap::privilege::drop_to(u)?;
        tracing::info!(user = %u.name, uid = %u.uid, gid = %u.gid, "dropped privileges");
    }
    let healthy = server
        .as_ref()
        .map(|s| s.healthy.clone())
        .unwrap_or_else(|| Arc::new(AtomicBool::new(true)));
    let timing = pipeline::LiveTiming {
        stats_event: std::time::Duration::from_secs(stats_every.max(1)),
        // /healthz is judged over windows of 5 s, or of the stats interval when shorter.
        health: std::time::Duration::from_secs(stats_every.clamp(1, 5)),
        ..pipeline::LiveTiming::default()
    };
    tracing::info!(
        interfaces = %args.interfaces.join(","),
        workers = opts.workers,
        "capturing"
    );
    let summary = pipeline::live(sources, &opts, &metrics, &stop, &healthy, &timing)?;
    write_metrics(&settings, &metrics)?;
    print_summary(&summary, metrics.alerts_total(), settings.summary_json);
    Ok(())
}

/// The HTTP endpoint, when `--listen` (or the live default) asks for one.
fn start_server(
    settings: &Settings,
    metrics: &Arc<Metrics>,
    opts: &pipeline::Options,
) -> anyhow::Result<Option<medtap::server::Server>> {
    let Some(addr) = settings.listen else {
        return Ok(None);
    };
    let inventory = opts
        .intel
        .shared
        .clone()
        .unwrap_or_else(medtap::intel::shared_inventory);
    let s = medtap::server::start(addr, metrics.clone(), settings.web.clone(), inventory)?;
    let scheme = match settings.web.as_ref().and_then(|w| w.tls.as_ref()) {
        Some(_) => "https",
        None => "http",
    };
    let auth = settings.web.as_ref().is_some_and(|w| w.auth.required());
    if auth && scheme == "http" {
        tracing::warn!("credentials are configured without TLS: they cross the network in clear");
    }
    tracing::info!(url = %format!("{scheme}://{}", s.addr), auth, "serving /metrics and /healthz");
    Ok(Some(s))
}

/// `--signatures DIR` (shipped + operator) or the shipped ones; errors name file and line.
fn load_signatures(
    dir: Option<&std::path::Path>,
) -> anyhow::Result<medtap::fingerprint::Signatures> {
    medtap::fingerprint::Signatures::load(dir).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("{e}");
        }
        ConfigError(format!("{} problem(s) in the signatures", errors.0.len())).into()
    })
}

fn pipeline_options(settings: &Settings, progress: bool) -> anyhow::Result<pipeline::Options> {
    let p0f = match &settings.p0f_db {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("--p0f-db {}: {e}", path.display())))?;
            let db = medtap_parsers::tcpfp::parse_p0f_db(&text).map_err(|e| {
                ConfigError(format!("{}:{}: {}", path.display(), e.line, e.problem))
            })?;
            Some(Arc::new(db))
        }
        None => None,
    };
    let sigs = load_signatures(settings.signatures.as_deref())?;
    let rules =
        medtap::detect::RuleSet::load(settings.signatures.as_deref()).map_err(|errors| {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            ConfigError(format!("{} problem(s) in the signatures", errors.0.len()))
        })?;
    Ok(pipeline::Options {
        workers: settings.workers,
        limits: settings.limits.clone(),
        timeouts: settings.timeouts.clone(),
        events: settings.events.clone(),
        bpf: settings.bpf.clone(),
        progress,
        intel: medtap::intel::IntelOptions {
            signatures: Some(medtap::reload::Reloadable::new(sigs)),
            state_dir: settings.state_dir.clone(),
            inventory: settings.inventory.clone(),
            max_devices: settings.limits.max_devices,
            // Snapshots for /api/devices only when there is an API to serve them.
            shared: settings
                .listen
                .is_some()
                .then(medtap::intel::shared_inventory),
            rules: Some(medtap::reload::Reloadable::new(rules)),
            detect: medtap::detect::DetectOptions {
                learning_period: settings.learning_period,
            },
            ..medtap::intel::IntelOptions::default()
        },
        p0f,
    })
}

/// `medtap inventory`: the devices stored under `--state-dir`.
fn run_inventory(args: medtap::config::InventoryArgs) -> anyhow::Result<()> {
    use medtap::config::InventoryFormat;
    use medtap::intel::devices::DeviceTable;
    let db = args.state_dir.join(medtap::intel::store::DB_FILE);
    if !db.exists() {
        return Err(ConfigError(format!(
            "--state-dir {}: no {} there (run replay or live with --state-dir first)",
            args.state_dir.display(),
            medtap::intel::store::DB_FILE
        ))
        .into());
    }
    let sigs = load_signatures(args.signatures.as_deref())?;
    let store = medtap::intel::store::Store::open(Some(&args.state_dir))?;
    let mut table = DeviceTable::new(usize::MAX);
    table.load(store.load_devices()?, &sigs);
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    match args.format {
        InventoryFormat::Json => out.write_all(&medtap::intel::Intel::inventory_json(&table)?)?,
        InventoryFormat::Table | InventoryFormat::Csv => {
            let mut devs: Vec<_> = table.devices().iter().collect();
            devs.sort_by(|a, b| a.key.cmp(&b.key));
            let header = [
                "key",
                "ips",
                "hostnames",
                "vendor",
                "model",
                "os",
                "category",
                "confidence",
                "first_seen",
                "last_seen",
            ];
            let rows: Vec<Vec<String>> = devs
                .iter()
                .map(|d| {
                    let v = d.view(false);
                    let os = v.os.map_or(String::new(), |o| {
                        let mut s = o.name.clone();
                        if let Some(ver) = &o.version {
                            s = format!("{s} {ver}");
                        }
                        if o.eol {
                            s.push_str(" (EOL)");
                        }
                        s
                    });
                    vec![
                        d.key.clone(),
                        v.ips
                            .iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                        v.hostnames.iter().cloned().collect::<Vec<_>>().join(" "),
                        v.vendor.unwrap_or("").to_string(),
                        v.model.unwrap_or("").to_string(),
                        os,
                        v.category.as_str().to_string(),
                        v.confidence.to_string(),
                        v.first_seen.to_string(),
                        v.last_seen.to_string(),
                    ]
                })
                .collect();
            if args.format == InventoryFormat::Csv {
                let field = |s: &str| {
                    if s.contains([',', '"', '\n', '\r']) {
                        format!("\"{}\"", s.replace('"', "\"\""))
                    } else {
                        s.to_string()
                    }
                };
                writeln!(out, "{}", header.join(","))?;
                for r in &rows {
                    let line: Vec<String> = r.iter().map(|c| field(c)).collect();
                    writeln!(out, "{}", line.join(","))?;
                }
            } else {
                let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
                for r in &rows {
                    for (i, c) in r.iter().enumerate() {
                        w[i] = w[i].max(c.chars().count());
                    }
                }
                let line = |cells: Vec<&str>| {
                    cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c:<width$}", width = w[i]))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                writeln!(out, "{}", line(header.to_vec()))?;
                for r in &rows {
                    writeln!(out, "{}", line(r.iter().map(|s| s.as_str()).collect()))?;
                }
                writeln!(out, "{} devices", rows.len())?;
            }
        }
    }
    Ok(())
}

/// `--metrics-out`: the exposition as it stands at the end of the run.
fn write_metrics(settings: &Settings, metrics: &Metrics) -> anyhow::Result<()> {
    if let Some(path) = &settings.metrics_out {
        std::fs::write(path, metrics.render())
            .map_err(|e| anyhow::anyhow!("--metrics-out {}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_summary(s: &Summary, alerts: u64, json: bool) {
    for (p, why) in &s.damage {
        tracing::warn!(file = %p.display(), reason = %why, "damaged capture");
    }
    let t = &s.totals;
    let flows = t.get(Counter::FlowsCreatedTcp)
        + t.get(Counter::FlowsCreatedUdp)
        + t.get(Counter::FlowsCreatedIcmp)
        + t.get(Counter::FlowsCreatedOther);
    let apps: Vec<(&str, u64)> = AppProto::ALL
        .iter()
        .map(|p| (p.as_str(), t.get(medtap::flow::app_counter(*p))))
        .filter(|(_, n)| *n > 0)
        .collect();
    let decode_errors: u64 = Counter::all()
        .filter(|c| c.spec().0 == "medtap_decode_errors_total")
        .map(|c| t.get(c))
        .sum();
    let pps = if s.elapsed > 0.0 {
        s.packets as f64 / s.elapsed
    } else {
        0.0
    };
    if json {
        let v = serde_json::json!({
            "files": {"ok": s.files_ok, "damaged": s.files_damaged, "skipped": s.files_skipped},
            "packets": s.packets, "bytes": s.bytes, "flows": flows, "flows_peak": t.flows_peak,
            "app_protocols": apps.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
            "decode_errors": decode_errors,
            "duration_s": s.elapsed, "packets_per_s": pps,
            "events": {"produced": t.get(Counter::EventsProduced), "written": s.events_written},
            "alerts": alerts,
        });
        eprintln!("{v}");
        return;
    }
    let apps_text = if apps.is_empty() {
        "none".to_string()
    } else {
        apps.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "medtap: {} files ({} damaged, {} skipped), {} packets, {} bytes, {} flows (peak {} live); app protocols: {}; {} alerts; {} decode errors; {:.2}s, {:.0} packets/s",
        s.files_ok + s.files_damaged,
        s.files_damaged,
        s.files_skipped,
        s.packets,
        s.bytes,
        flows,
        t.flows_peak,
        apps_text,
        alerts,
        decode_errors,
        s.elapsed,
        pps
    );
}
