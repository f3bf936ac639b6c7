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
        Command::Signatures {
            action: medtap::config::SignaturesAction::Check { dir },
        } => {
            use medtap::fingerprint::signatures::Signatures;
            match Signatures::load(dir.as_deref()) {
                Ok(s) => {
                    println!(
                        "signatures ok: {} rules, {} evidence weights, {} end-of-life entries",
                        s.rules.len(),
                        s.weights.len(),
                        s.eol.len()
                    );
                    Ok(())
                }
                Err(errors) => {
                    for e in &errors.0 {
                        eprintln!("{e}");
                    }
                    Err(
                        ConfigError(format!("{} problem(s) in the signatures", errors.0.len()))
                            .into(),
                    )
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
            let _server = start_server(&settings, &metrics)?;
            let opts = pipeline_options(&settings, settings.progress);
            let summary = pipeline::replay(&files, &opts, &metrics)?;
            write_metrics(&settings, &metrics)?;
            print_summary(&summary, settings.summary_json);
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
        };
        let src = medtap::capture::LiveSource::open(&s)?;
        sources.push((s, src));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
    let server = start_server(&settings, &metrics)?;
    if let Some(u) = &user {
        medtap::privilege::drop_to(u)?;
        tracing::info!(user = %u.name, uid = %u.uid, gid = %u.gid, "dropped privileges");
    }
    let healthy = server
        .as_ref()
        .map(|s| s.healthy.clone())
        .unwrap_or_else(|| Arc::new(AtomicBool::new(true)));
    let opts = pipeline_options(&settings, false);
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
    print_summary(&summary, settings.summary_json);
    Ok(())
}

/// The HTTP endpoint, when `--listen` (or the live default) asks for one.
fn start_server(
    settings: &Settings,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<medtap::server::Server>> {
    let Some(addr) = settings.listen else {
        return Ok(None);
    };
    let s = medtap::server::start(addr, metrics.clone(), settings.web.clone())?;
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

fn pipeline_options(settings: &Settings, progress: bool) -> pipeline::Options {
    pipeline::Options {
        workers: settings.workers,
        limits: settings.limits.clone(),
        timeouts: settings.timeouts.clone(),
        events: settings.events.clone(),
        bpf: settings.bpf.clone(),
        progress,
        intel: medtap::intel::IntelOptions::default(),
    }
}

/// `--metrics-out`: the exposition as it stands at the end of the run.
fn write_metrics(settings: &Settings, metrics: &Metrics) -> anyhow::Result<()> {
    if let Some(path) = &settings.metrics_out {
        std::fs::write(path, metrics.render())
            .map_err(|e| anyhow::anyhow!("--metrics-out {}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_summary(s: &Summary, json: bool) {
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
            "packets": s.packets, "bytes": s.bytes, "flows": flows,
            "app_protocols": apps.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
            "decode_errors": decode_errors,
            "duration_s": s.elapsed, "packets_per_s": pps,
            "events": {"produced": t.get(Counter::EventsProduced), "written": s.events_written},
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
        "medtap: {} files ({} damaged, {} skipped), {} packets, {} bytes, {} flows; app protocols: {}; {} decode errors; {:.2}s, {:.0} packets/s",
        s.files_ok + s.files_damaged,
        s.files_damaged,
        s.files_skipped,
        s.packets,
        s.bytes,
        flows,
        apps_text,
        decode_errors,
        s.elapsed,
        pps
    );
}
