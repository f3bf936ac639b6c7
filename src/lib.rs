//! medtap: a passive network sensor for hospital networks.
//!
//! The packet path, one stage per module, data flowing one way:
//! `capture -> decode -> flow -> reassembly -> protocols -> (fingerprint -> detect) -> output / metrics`.
//! `pipeline` wires the stages onto threads; `server` serves `/metrics` and `/healthz`.
#![deny(unsafe_code)]

pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod fingerprint;
pub mod flow;
pub mod intel;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod output;
pub mod pcapfile;
pub mod pcapng;
pub mod pipeline;
pub mod privilege;
pub mod protocols;
pub mod reassembly;
pub mod reload;
pub mod server;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;
pub mod time;
pub mod webconfig;
