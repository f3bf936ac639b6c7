//! Every kind of bad flag, configuration file and signature file exits 2 with a message naming
//! the file, the line and the problem (for flags: the flag and the problem). One table; a new
//! case is one row.

mod common;

use std::path::Path;

/// Where the bad input goes.
enum Input {
    /// Extra flags for `medtap replay`.
    Flags(&'static [&'static str]),
    /// Extra flags for `medtap live -i hos-none0` (rejected before any capture starts; the
    /// interface does not exist, so a check that came too late would fail, not capture).
    Live(&'static [&'static str]),
    /// A `--config` file with this text.
    Config(&'static str),
    /// An operator signature file `site.toml` (checked by `medtap signatures check DIR` and
    /// given to `medtap replay --signatures DIR`).
    Signatures(&'static str),
}

struct Case {
    name: &'static str,
    input: Input,
    /// Line the message must name (file inputs), 0 for flags.
    line: usize,
    /// Words the message must contain (the flag, the key, the problem).
    words: &'static [&'static str],
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { name: "unknown flag", input: Input::Flags(&["--bogus-flag"]), line: 0, words: &["--bogus-flag"] },
    Case { name: "workers 0", input: Input::Flags(&["--workers", "0"]), line: 0, words: &["--workers", "0"] },
    Case { name: "workers not a number", input: Input::Flags(&["--workers", "many"]), line: 0, words: &["--workers", "many"] },
    Case { name: "listen not an address", input: Input::Flags(&["--listen", "not-an-address"]), line: 0, words: &["--listen", "not-an-address"] },
    Case { name: "linger bad duration", input: Input::Flags(&["--listen", "127.0.0.1:0", "--linger", "3 fortnights"]), line: 0, words: &["--linger"] },
    Case { name: "bpf syntax", input: Input::Flags(&["--bpf", "tcp and and"]), line: 0, words: &["tcp and and"] },
    Case { name: "live snaplen out of range", input: Input::Live(&["--snaplen", "10"]), line: 0, words: &["--snaplen", "10"] },
    Case { name: "live stats interval", input: Input::Live(&["--stats-interval", "soon"]), line: 0, words: &["--stats-interval", "soon"] },
    Case { name: "live buffer out of range", input: Input::Live(&["--buffer-mib", "0"]), line: 0, words: &["--buffer-mib"] },
    Case { name: "config missing", input: Input::Flags(&["--config", "/nonexistent/medtap.toml"]), line: 0, words: &["/nonexistent/medtap.toml"] },
    Case { name: "toml syntax", input: Input::Config("workers = 2\n\n[limits\nmax_flows = 2048\n"), line: 3, words: &[] },
    Case { name: "unknown top-level key", input: Input::Config("workers = 2\nworkerz = 3\n"), line: 2, words: &["workerz"] },
    Case { name: "wrong type", input: Input::Config("# comment\nworkers = \"two\"\n"), line: 2, words: &["workers"] },
    Case { name: "unknown limits key", input: Input::Config("[limits]\nmax_flows = 2048\nmax_flowz = 10\n"), line: 3, words: &["max_flowz", "unknown"] },
    Case { name: "limit below range", input: Input::Config("[limits]\n\nmax_flows = 3\n"), line: 3, words: &["max_flows", "range"] },
    Case { name: "limit above range", input: Input::Config("[limits]\nreassembly_global_bytes = \"17GiB\"\n"), line: 2, words: &["reassembly_global_bytes", "range"] },
    Case { name: "limit not a size", input: Input::Config("[limits]\nevent_queue = \"lots\"\n"), line: 2, words: &["event_queue", "lots"] },
    Case { name: "timeout bad unit", input: Input::Config("[timeouts]\nudp = \"5 years\"\n"), line: 2, words: &["udp"] },
    Case { name: "timeout above range", input: Input::Config("[timeouts]\ntcp_new = \"2d\"\n"), line: 2, words: &["tcp_new", "range"] },
    Case { name: "listen in file", input: Input::Config("listen = \"nowhere\"\n"), line: 1, words: &["listen", "nowhere"] },
    Case { name: "workers in file out of range", input: Input::Config("# sensor\nworkers = 0\n"), line: 2, words: &["workers", "between"] },
    Case { name: "signature syntax", input: Input::Signatures("# site rules\n[[rule]]\nid = \"x\"\nnot toml at all\n"), line: 4, words: &[] },
    Case { name: "signature unknown field", input: Input::Signatures("[[rule]]\nid = \"site-1\"\nkind = \"dicom_implementation_class_uid\"\nprefix = \"1.2.3.\"\nvendr = \"Acme\"\nweight = 60\n"), line: 5, words: &["vendr"] },
    Case { name: "signature bad regex", input: Input::Signatures("[[rule]]\nid = \"site-2\"\nkind = \"dicom_implementation_version_name\"\nregex = \"^ACME_(\"\nvendor = \"Acme\"\nweight = 60\n"), line: 4, words: &["regex"] },
];

fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = common::medtap().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(
    case: &Case,
    what: &str,
    code: Option<i32>,
    err: &str,
    file: Option<&Path>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if code != Some(2) {
        problems.push(format!(
            "{} ({what}): exit {code:?}, not 2: {err}",
            case.name
        ));
    }
    if let Some(f) = file {
        let at = format!("{}:{}", f.display(), case.line);
        if !err.contains(&at) {
            problems.push(format!(
                "{} ({what}): message does not name {at}: {err}",
                case.name
            ));
        }
    }
    for w in case.words {
        if !err.contains(w) {
            problems.push(format!(
                "{} ({what}): message lacks {w:?}: {err}",
                case.name
            ));
        }
    }
    if err.contains("panicked") {
        problems.push(format!("{} ({what}): panic: {err}", case.name));
    }
    problems
}

#[test]
fn every_kind_of_bad_input_exits_2_naming_file_line_and_problem() {
    let pcap = common::pcap("dicom/echo.pcap");
    let mut problems = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        match &case.input {
            Input::Flags(flags) => {
                let mut a: Vec<&std::ffi::OsStr> =
                    vec!["replay".as_ref(), "--no-progress".as_ref()];
                a.extend(flags.iter().map(std::ffi::OsStr::new));
                a.push(pcap.as_os_str());
                let (code, err) = run(&a);
                problems.extend(check(case, "replay", code, &err, None));
            }
            Input::Live(flags) => {
                let mut a: Vec<&std::ffi::OsStr> =
                    vec!["live".as_ref(), "-i".as_ref(), "hos-none0".as_ref()];
                a.extend(flags.iter().map(std::ffi::OsStr::new));
                let (code, err) = run(&a);
                problems.extend(check(case, "live", code, &err, None));
            }
            Input::Config(text) => {
                let f = dir.path().join("medtap.toml");
                std::fs::write(&f, text).unwrap();
                let a: Vec<&std::ffi::OsStr> = vec![
                    "replay".as_ref(),
                    "--no-progress".as_ref(),
                    "--config".as_ref(),
                    f.as_os_str(),
                    pcap.as_os_str(),
                ];
                let (code, err) = run(&a);
                problems.extend(check(case, "replay --config", code, &err, Some(&f)));
            }
            Input::Signatures(text) => {
                let f = dir.path().join("site.toml");
                std::fs::write(&f, text).unwrap();
                let a: Vec<&std::ffi::OsStr> = vec![
                    "signatures".as_ref(),
                    "check".as_ref(),
                    dir.path().as_os_str(),
                ];
                let (code, err) = run(&a);
                problems.extend(check(case, "signatures check", code, &err, Some(&f)));
                let a: Vec<&std::ffi::OsStr> = vec![
                    "replay".as_ref(),
                    "--no-progress".as_ref(),
                    "--signatures".as_ref(),
                    dir.path().as_os_str(),
                    pcap.as_os_str(),
                ];
                let (code, err) = run(&a);
                problems.extend(check(case, "replay --signatures", code, &err, Some(&f)));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
