//! Privilege drop for live capture: open the interface as root (or with CAP_NET_RAW), then
//! become an unprivileged user and group and shed every capability before any packet is
//! decoded.
//!
//! The crate forbids `unsafe`; the system calls go through `nix` (setgroups, setgid,
//! setuid) and `caps` (capability sets). Order matters: supplementary groups and the group
//! first (changing them needs root), the user last, then the capability sets that survive a
//! switch from root (ambient caps under systemd, or a process that was never root).

use nix::unistd::{Gid, Group, Uid, User};
use thiserror::Error;

/// Whom to become after the capture is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges {
    /// User name or numeric uid.
    pub user: Option<String>,
    /// Group name or numeric gid; without it, the user's primary group.
    pub group: Option<String>,
}

/// Why privileges could not be dropped (the sensor refuses to run on).
#[derive(Debug, Error)]
pub enum PrivilegeError {
    /// No such user.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// No such group.
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    /// The user or group database could not be read.
    #[error("looking up {name:?}: {source}")]
    Lookup {
        /// The name looked up.
        name: String,
        /// The error.
        source: nix::Error,
    },
    /// A set*id call failed (usually: not started as root).
    #[error("{call} failed: {source} (start as root to use --user/--group)")]
    Switch {
        /// The call.
        call: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// Capability sets could not be cleared.
    #[error("cannot clear capabilities: {0}")]
    Caps(String),
    /// After the switch the process could still regain root.
    #[error("privilege drop did not stick: uid {uid}, euid {euid}")]
    NotDropped {
        /// Real uid.
        uid: u32,
        /// Effective uid.
        euid: u32,
    },
}

fn lookup_user(name: &str) -> Result<User, PrivilegeError> {
    let found = match name.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(name),
    };
    found
        .map_err(|source| PrivilegeError::Lookup {
            name: name.to_string(),
            source,
        })?
        .ok_or_else(|| PrivilegeError::UnknownUser(name.to_string()))
}

fn lookup_group(name: &str) -> Result<Gid, PrivilegeError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    Group::from_name(name)
        .map_err(|source| PrivilegeError::Lookup {
            name: name.to_string(),
            source,
        })?
        .map(|g| g.gid)
        .ok_or_else(|| PrivilegeError::UnknownGroup(name.to_string()))
}

/// Switches to `p.user`/`p.group` (when given) and sheds capabilities.
///
/// Without `--user` a process running as root keeps root (a warning says so): clearing
/// root's capabilities would leave a root process that cannot reopen its own log files. A
/// process that is not root (systemd `User=` with ambient capabilities) always sheds its
/// capabilities here, because the open capture needs none.
pub fn drop_privileges(p: &Privileges) -> Result<(), PrivilegeError> {
    let user = p.user.as_deref().map(lookup_user).transpose()?;
    let gid = match (&p.group, &user) {
        (Some(g), _) => Some(lookup_group(g)?),
        (None, Some(u)) => Some(u.gid),
        (None, None) => None,
    };
    if let Some(gid) = gid {
        let switch = |call, source| PrivilegeError::Switch { call, source };
        nix::unistd::setgroups(&[gid]).map_err(|e| switch("setgroups", e))?;
        nix::unistd::setgid(gid).map_err(|e| switch("setgid", e))?;
    }
    if let Some(u) = &user {
        nix::unistd::setuid(u.uid).map_err(|source| PrivilegeError::Switch {
            call: "setuid",
            source,
        })?;
        if !u.uid.is_root() && (Uid::current().is_root() || Uid::effective().is_root()) {
            return Err(PrivilegeError::NotDropped {
                uid: Uid::current().as_raw(),
                euid: Uid::effective().as_raw(),
            });
        }
    }
    if Uid::effective().is_root() {
        if user.is_none() {
            tracing::warn!(
                "Running as root after the capture opened; pass --user to drop privileges."
            );
        }
        return Ok(());
    }
    shed_capabilities()?;
    tracing::info!(
        uid = Uid::current().as_raw(),
        gid = nix::unistd::Gid::current().as_raw(),
        "Privileges dropped; capabilities cleared."
    );
    Ok(())
}

/// Clears the ambient, inheritable, effective and permitted capability sets.
pub fn shed_capabilities() -> Result<(), PrivilegeError> {
    use caps::CapSet;
    let err = |e: caps::errors::CapsError| PrivilegeError::Caps(e.to_string());
    // Ambient first: it may only hold what is also permitted and inheritable.
    caps::clear(None, CapSet::Ambient).map_err(err)?;
    caps::clear(None, CapSet::Inheritable).map_err(err)?;
    caps::clear(None, CapSet::Effective).map_err(err)?;
    caps::clear(None, CapSet::Permitted).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_errors() {
        let e = lookup_user("xw-no-such-user-42").unwrap_err();
        assert!(matches!(e, PrivilegeError::UnknownUser(_)), "{e}");
        let e = lookup_group("xw-no-such-group-42").unwrap_err();
        assert!(matches!(e, PrivilegeError::UnknownGroup(_)), "{e}");
    }

    #[test]
    fn numeric_and_named_lookups() {
        assert_eq!(lookup_user("0").unwrap().name, "root");
        assert_eq!(lookup_user("root").unwrap().uid.as_raw(), 0);
        assert_eq!(lookup_group("0").unwrap().as_raw(), 0);
    }
}
