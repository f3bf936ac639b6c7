//! `--user NAME`: give up root once the capture handles are open and the listening socket is
//! bound. The user is looked up before anything is opened (an unknown name is a usage error,
//! exit 2); the drop itself sets the supplementary groups (`initgroups`), the group and then
//! the user (real, effective and saved ids: glibc applies them to every thread), and then checks
//! that the process cannot become root again. A drop that fails in any way ends the run
//! (exit 1): medtap never goes on capturing as root when asked not to.
//!
//! Safe `nix` calls only (no `unsafe` here). Capabilities are lost with the uid change (no
//! `PR_SET_KEEPCAPS`), so what is opened later (event log, metrics file) is opened as the user.

use std::ffi::CString;

use anyhow::{bail, Context, Result};
use nix::unistd::{getegid, geteuid, getgid, getuid, initgroups, setgid, setuid, Gid, Uid, User};

use crate::config::ConfigError;

/// The user to become, resolved up front.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// Look `name` up in the user database (usage error when absent).
pub fn lookup(name: &str) -> Result<Target, ConfigError> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(Target {
            name: name.to_string(),
            uid: u.uid,
            gid: u.gid,
        }),
        Ok(None) => Err(ConfigError(format!("--user {name}: no such user"))),
        Err(e) => Err(ConfigError(format!("--user {name}: cannot look up: {e}"))),
    }
}

/// Become `t` for good. Errors when any step fails or root can be regained.
pub fn drop_to(t: &Target) -> Result<()> {
    if getuid() == t.uid && geteuid() == t.uid && getgid() == t.gid && getegid() == t.gid {
        return Ok(());
    }
    let cname = CString::new(t.name.as_str()).context("--user: name holds a NUL byte")?;
    initgroups(&cname, t.gid)
        .with_context(|| format!("--user {}: cannot set supplementary groups", t.name))?;
    setgid(t.gid).with_context(|| format!("--user {}: cannot set gid {}", t.name, t.gid))?;
    setuid(t.uid).with_context(|| format!("--user {}: cannot set uid {}", t.name, t.uid))?;
    if getuid() != t.uid || geteuid() != t.uid || getgid() != t.gid || getegid() != t.gid {
        bail!("--user {}: ids did not change as asked", t.name);
    }
    if !t.uid.is_root() && (setuid(Uid::from_raw(0)).is_ok() || geteuid().is_root()) {
        bail!("--user {}: root could be regained after the drop", t.name);
    }
    Ok(())
}
