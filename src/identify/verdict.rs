//! Mismatch verdicts (DESIGN §4): what the identified protocol says about the port policy.
//!
//! * `port-mismatch`: a file-transfer control protocol (ftp, ftps, smb, tftp) on a server port
//!   not listed for it and not excepted for that server address.
//! * `expected-protocol-absent`: a server port listed for a file-transfer control protocol
//!   carried something else, or nothing identifiable.
//! * `direction-disagreement`: the two directions identified as different protocols.
//!
//! No verdict for attempts (no payload either way) or linked data channels. Tentative labels
//! (see [`super::Labels::tentative`]) never raise a port-mismatch and satisfy the port they
//! are expected on, so a capture fragment holding only a client `QUIT` to port 21 is quiet.
//!
//! Data-channel ports (ftp-data 20) are in the policy so alerts can name them, but raise no
//! verdict: a data channel carries arbitrary file bytes, and an active-mode data connection
//! *comes from* port 20, so port 20 is the client side of an unlinked data flow and its
//! server port is the FTP client's ephemeral port, which lists nothing. Unlinked data flows
//! therefore end as `unknown` (or whatever their file bytes look like) on an unlisted port:
//! no verdict unless the bytes are themselves a file-transfer control protocol.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::Labels;
use crate::app_proto::AppProto;

/// Server addresses in `net` may run `proto` on `ports` (a per-subnet or per-host exception).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortException {
    /// Server addresses covered (a /32 or /128 for one host).
    pub net: IpNet,
    /// The protocol allowed.
    pub proto: AppProto,
    /// The server ports it may use there.
    pub ports: Vec<u16>,
}

/// The port policy table: which protocols each server port is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPolicy {
    /// (port, protocol), sorted and deduplicated.
    by_port: Vec<(u16, AppProto)>,
    exceptions: Vec<PortException>,
}

impl PortPolicy {
    /// Builds a policy from `(protocol, ports)` rows and exceptions.
    pub fn new(ports: &[(AppProto, Vec<u16>)], exceptions: Vec<PortException>) -> PortPolicy {
        let mut by_port: Vec<(u16, AppProto)> = ports
            .iter()
            .flat_map(|(p, list)| list.iter().map(move |&port| (port, *p)))
            .collect();
        by_port.sort_unstable();
        by_port.dedup();
        PortPolicy {
            by_port,
            exceptions,
        }
    }

    /// The shipped defaults: ftp 21, ftp-data 20, ftps 990/989, smb 445/139, tftp 69.
    pub fn default_policy() -> PortPolicy {
        PortPolicy::new(
            &[
                (AppProto::Ftp, vec![21]),
                (AppProto::FtpData, vec![20]),
                (AppProto::Ftps, vec![990, 989]),
                (AppProto::Smb, vec![445, 139]),
                (AppProto::Tftp, vec![69]),
            ],
            Vec::new(),
        )
    }

    /// Protocols listed for a server port.
    pub fn expected_at(&self, port: u16) -> Vec<AppProto> {
        let start = self.by_port.partition_point(|&(p, _)| p < port);
        self.by_port
            .iter()
            .skip(start)
            .take_while(|&&(p, _)| p == port)
            .map(|&(_, a)| a)
            .collect()
    }

    /// Ports listed for a protocol, in ascending order.
    pub fn ports_for(&self, proto: AppProto) -> Vec<u16> {
        self.by_port
            .iter()
            .filter(|&&(_, a)| a == proto)
            .map(|&(p, _)| p)
            .collect()
    }

    /// True if the policy lists any protocol for `port`.
    pub fn lists_port(&self, port: u16) -> bool {
        self.by_port
            .binary_search_by_key(&port, |&(p, _)| p)
            .is_ok()
    }

    fn listed(&self, proto: AppProto, port: u16) -> bool {
        self.by_port.binary_search(&(port, proto)).is_ok()
    }

    fn excepted(&self, proto: AppProto, port: u16, server: IpAddr) -> bool {
        self.exceptions
            .iter()
            .any(|e| e.proto == proto && e.ports.contains(&port) && e.net.contains(&server))
    }

    /// True if `server` may run `proto` on `port` (listed, or excepted for that address).
    pub fn allows(&self, proto: AppProto, port: u16, server: IpAddr) -> bool {
        self.listed(proto, port) || self.excepted(proto, port, server)
    }
}

/// Control protocols the port rules are about (data channels are never judged).
const fn is_control(p: AppProto) -> bool {
    matches!(
        p,
        AppProto::Ftp | AppProto::Ftps | AppProto::Smb | AppProto::Tftp
    )
}

/// A mismatch verdict with the facts needed to explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A file-transfer protocol on a port not listed for it.
    PortMismatch {
        /// The protocol identified.
        found: AppProto,
        /// The server port.
        port: u16,
        /// Protocols the policy lists for this port (may be empty).
        expected_here: Vec<AppProto>,
        /// Ports the policy lists for the protocol found.
        expected_ports: Vec<u16>,
    },
    /// A file-transfer port carrying something else (or nothing identifiable).
    ExpectedProtocolAbsent {
        /// What was found instead (`unknown` when nothing matched).
        found: AppProto,
        /// The server port.
        port: u16,
        /// Protocols the policy lists for this port.
        expected_here: Vec<AppProto>,
        /// Ports the policy lists for the protocol found (empty for non-file-transfer ones).
        expected_ports: Vec<u16>,
    },
    /// The two directions identified as different protocols.
    DirectionDisagreement {
        /// Label of the to-server direction.
        ts: AppProto,
        /// Label of the to-client direction.
        tc: AppProto,
        /// The flow's `app_proto`.
        found: AppProto,
        /// The server port.
        port: u16,
        /// Protocols the policy lists for this port (may be empty).
        expected_here: Vec<AppProto>,
        /// Ports the policy lists for the flow's `app_proto`.
        expected_ports: Vec<u16>,
    },
}

impl Verdict {
    /// The `xfer.rule` name (DESIGN §6); never changes meaning.
    pub fn rule(&self) -> &'static str {
        match self {
            Verdict::PortMismatch { .. } => "port-mismatch",
            Verdict::ExpectedProtocolAbsent { .. } => "expected-protocol-absent",
            Verdict::DirectionDisagreement { .. } => "direction-disagreement",
        }
    }

    /// Protocols the policy lists for the server port, and ports it lists for the protocol
    /// found.
    pub fn expected(&self) -> (&[AppProto], &[u16]) {
        match self {
            Verdict::PortMismatch {
                expected_here,
                expected_ports,
                ..
            }
            | Verdict::ExpectedProtocolAbsent {
                expected_here,
                expected_ports,
                ..
            }
            | Verdict::DirectionDisagreement {
                expected_here,
                expected_ports,
                ..
            } => (expected_here, expected_ports),
        }
    }

    /// The protocol the verdict is about (the flow's `app_proto`).
    pub fn found(&self) -> AppProto {
        match self {
            Verdict::PortMismatch { found, .. }
            | Verdict::ExpectedProtocolAbsent { found, .. }
            | Verdict::DirectionDisagreement { found, .. } => *found,
        }
    }
}

/// A list printed comma-separated, or `none` when empty (protocols and ports alike).
struct List<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// One sentence a reader can act on, e.g. "smb on server port 80; smb is expected on 139, 445".
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::PortMismatch {
                found,
                port,
                expected_here,
                expected_ports,
            } => write!(
                f,
                "{found} on server port {port}; {found} is expected on {}; port {port} is for {}",
                List(expected_ports),
                List(expected_here)
            ),
            Verdict::ExpectedProtocolAbsent {
                found,
                port,
                expected_here,
                ..
            } => {
                let what = if *found == AppProto::Unknown {
                    "nothing identifiable within the probe budget".to_owned()
                } else {
                    found.as_str().to_owned()
                };
                write!(
                    f,
                    "server port {port} is for {} but carried {what}",
                    List(expected_here)
                )
            }
            Verdict::DirectionDisagreement { ts, tc, port, .. } => write!(
                f,
                "client side speaks {ts} but server side speaks {tc} on server port {port}"
            ),
        }
    }
}

/// True when none of the three rules can fire, which is most flows: no control protocol
/// found, the directions agree, and the policy lists nothing for the port.
fn quiet(labels: &Labels, server_port: u16, policy: &PortPolicy) -> bool {
    !is_control(labels.app_proto) && !labels.disagree() && !policy.lists_port(server_port)
}

/// Every verdict for a finished flow, in the order port-mismatch, expected-protocol-absent,
/// direction-disagreement. Allocates only when a verdict is raised.
pub fn judge_all(
    labels: &Labels,
    linked: bool,
    server_ip: IpAddr,
    server_port: u16,
    payload_ts: u64,
    payload_tc: u64,
    policy: &PortPolicy,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    if linked || (payload_ts == 0 && payload_tc == 0) {
        return out;
    }
    if quiet(labels, server_port, policy) {
        return out;
    }
    let found = labels.app_proto;
    let port = server_port;
    // An upgraded control channel (ftp → ftps) may use the ports of what it was.
    let allowed_as = |p: AppProto| {
        policy.allows(p, port, server_ip)
            || (p == AppProto::Ftps
                && labels.orig == Some(AppProto::Ftp)
                && policy.allows(AppProto::Ftp, port, server_ip))
    };
    let expected_ports = || {
        let mut ports = policy.ports_for(found);
        if found == AppProto::Ftps && labels.orig == Some(AppProto::Ftp) {
            ports.extend(policy.ports_for(AppProto::Ftp));
        }
        ports
    };
    let expected_here: Vec<AppProto> = policy
        .expected_at(port)
        .into_iter()
        .filter(|&p| is_control(p))
        .collect();

    if is_control(found) && !labels.tentative && !allowed_as(found) {
        out.push(Verdict::PortMismatch {
            found,
            port,
            expected_here: policy.expected_at(port),
            expected_ports: expected_ports(),
        });
    }
    if !expected_here.is_empty() && !allowed_as(found) {
        out.push(Verdict::ExpectedProtocolAbsent {
            found,
            port,
            expected_here: expected_here.clone(),
            expected_ports: expected_ports(),
        });
    }
    if let (Some(ts), Some(tc)) = (labels.ts, labels.tc) {
        out.push(Verdict::DirectionDisagreement {
            ts,
            tc,
            found,
            port,
            expected_here: policy.expected_at(port),
            expected_ports: expected_ports(),
        });
    }
    out
}

/// The most important verdict for a finished flow, if any (the first of [`judge_all`]).
/// Inlined so that the common quiet case costs the caller a few comparisons.
#[inline]
pub fn judge(
    labels: &Labels,
    linked: bool,
    server_ip: IpAddr,
    server_port: u16,
    payload_ts: u64,
    payload_tc: u64,
    policy: &PortPolicy,
) -> Option<Verdict> {
    if quiet(labels, server_port, policy) {
        return None;
    }
    judge_all(
        labels,
        linked,
        server_ip,
        server_port,
        payload_ts,
        payload_tc,
        policy,
    )
    .into_iter()
    .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn labels(app_proto: AppProto) -> Labels {
        Labels {
            app_proto,
            ts: None,
            tc: None,
            orig: None,
            tentative: false,
        }
    }

    fn rules(l: &Labels, port: u16) -> Vec<&'static str> {
        let policy = PortPolicy::default_policy();
        judge_all(l, false, ip("203.0.113.7"), port, 100, 200, &policy)
            .iter()
            .map(Verdict::rule)
            .collect()
    }

    #[test]
    fn policy_lookups() {
        let p = PortPolicy::default_policy();
        assert_eq!(p.expected_at(445), vec![AppProto::Smb]);
        assert_eq!(p.expected_at(80), vec![]);
        assert_eq!(p.ports_for(AppProto::Smb), vec![139, 445]);
        assert_eq!(p.ports_for(AppProto::Ftps), vec![989, 990]);
        assert!(p.allows(AppProto::Tftp, 69, ip("10.0.0.1")));
        assert!(!p.allows(AppProto::Tftp, 53, ip("10.0.0.1")));
    }

    #[test]
    fn port_mismatch() {
        for (proto, port) in [
            (AppProto::Ftp, 80),
            (AppProto::Smb, 443),
            (AppProto::Tftp, 53),
        ] {
            assert_eq!(
                rules(&labels(proto), port),
                vec!["port-mismatch"],
                "{proto} on {port}"
            );
        }
        let v = judge(
            &labels(AppProto::Smb),
            false,
            ip("10.0.0.1"),
            80,
            168,
            69,
            &PortPolicy::default_policy(),
        )
        .unwrap();
        assert_eq!(
            v,
            Verdict::PortMismatch {
                found: AppProto::Smb,
                port: 80,
                expected_here: vec![],
                expected_ports: vec![139, 445]
            }
        );
        assert_eq!(
            v.to_string(),
            "smb on server port 80; smb is expected on 139, 445; port 80 is for none"
        );
    }

    #[test]
    fn expected_protocol_absent() {
        assert_eq!(
            rules(&labels(AppProto::Http), 21),
            vec!["expected-protocol-absent"]
        );
        assert_eq!(
            rules(&labels(AppProto::Tls), 445),
            vec!["expected-protocol-absent"]
        );
        assert_eq!(
            rules(&labels(AppProto::Http), 990),
            vec!["expected-protocol-absent"]
        );
        let v = judge(
            &labels(AppProto::Unknown),
            false,
            ip("10.0.0.1"),
            445,
            64,
            0,
            &PortPolicy::default_policy(),
        )
        .unwrap();
        assert_eq!(v.rule(), "expected-protocol-absent");
        assert_eq!(v.found(), AppProto::Unknown);
        assert_eq!(
            v.to_string(),
            "server port 445 is for smb but carried nothing identifiable within the probe budget"
        );
        // Plain FTP on the implicit-FTPS port is both wrong for FTP and missing FTPS.
        assert_eq!(
            rules(&labels(AppProto::Ftp), 990),
            vec!["port-mismatch", "expected-protocol-absent"]
        );
    }

    #[test]
    fn direction_disagreement() {
        let l = Labels {
            ts: Some(AppProto::Http),
            tc: Some(AppProto::Ssh),
            ..labels(AppProto::Http)
        };
        assert_eq!(rules(&l, 8080), vec!["direction-disagreement"]);
        let v = judge(
            &l,
            false,
            ip("10.0.0.1"),
            8080,
            1,
            1,
            &PortPolicy::default_policy(),
        )
        .unwrap();
        assert_eq!(
            v.to_string(),
            "client side speaks http but server side speaks ssh on server port 8080"
        );
    }

    #[test]
    fn negatives() {
        assert!(rules(&labels(AppProto::Ftp), 21).is_empty());
        assert!(rules(&labels(AppProto::Smb), 445).is_empty());
        assert!(rules(&labels(AppProto::Smb), 139).is_empty());
        assert!(rules(&labels(AppProto::Tftp), 69).is_empty());
        assert!(rules(&labels(AppProto::Http), 80).is_empty());
        assert!(rules(&labels(AppProto::Tls), 443).is_empty());
        assert!(rules(&labels(AppProto::Ftps), 990).is_empty());
        assert!(rules(&labels(AppProto::Unknown), 5555).is_empty());
        // Explicit FTPS on 21 is the FTP port's own protocol.
        let upgraded = Labels {
            orig: Some(AppProto::Ftp),
            ..labels(AppProto::Ftps)
        };
        assert!(rules(&upgraded, 21).is_empty());
        // But on 2121 it is still FTP off its port.
        assert_eq!(rules(&upgraded, 2121), vec!["port-mismatch"]);
    }

    #[test]
    fn attempts_and_linked_channels_are_never_judged() {
        let p = PortPolicy::default_policy();
        let l = labels(AppProto::Unknown);
        assert_eq!(judge(&l, false, ip("10.0.0.1"), 445, 0, 0, &p), None);
        assert_eq!(
            judge(
                &labels(AppProto::Ftp),
                true,
                ip("10.0.0.1"),
                40000,
                10,
                10,
                &p
            ),
            None
        );
        assert_eq!(
            judge(
                &labels(AppProto::TftpData),
                true,
                ip("10.0.0.1"),
                50618,
                10,
                10,
                &p
            ),
            None
        );
    }

    #[test]
    fn data_channel_ports_raise_nothing() {
        // Unlinked active-mode data: from server port 20 to the client's ephemeral port.
        assert!(rules(&labels(AppProto::Unknown), 40003).is_empty());
        // Something connecting *to* port 20 with file bytes: the port is a data port.
        assert!(rules(&labels(AppProto::Unknown), 20).is_empty());
        // An OACK-started TFTP transfer flow on an ephemeral port.
        assert!(rules(&labels(AppProto::TftpData), 50012).is_empty());
    }

    #[test]
    fn tentative_labels_never_mismatch() {
        let t = Labels {
            tentative: true,
            ..labels(AppProto::Ftp)
        };
        assert!(rules(&t, 21).is_empty());
        assert!(rules(&t, 8021).is_empty());
        // They still do not satisfy another protocol's port.
        assert_eq!(rules(&t, 445), vec!["expected-protocol-absent"]);
    }

    #[test]
    fn exceptions_by_subnet_and_host() {
        let policy = PortPolicy::new(
            &[(AppProto::Ftp, vec![21]), (AppProto::Smb, vec![445])],
            vec![
                PortException {
                    net: "192.0.2.0/24".parse().unwrap(),
                    proto: AppProto::Ftp,
                    ports: vec![2121],
                },
                PortException {
                    net: "2001:db8::5/128".parse().unwrap(),
                    proto: AppProto::Http,
                    ports: vec![445],
                },
            ],
        );
        let ftp = labels(AppProto::Ftp);
        assert_eq!(
            judge(&ftp, false, ip("192.0.2.9"), 2121, 1, 1, &policy),
            None
        );
        assert_eq!(
            judge(&ftp, false, ip("198.51.100.9"), 2121, 1, 1, &policy)
                .unwrap()
                .rule(),
            "port-mismatch"
        );
        let http = labels(AppProto::Http);
        assert_eq!(
            judge(&http, false, ip("2001:db8::5"), 445, 1, 1, &policy),
            None
        );
        assert_eq!(
            judge(&http, false, ip("2001:db8::6"), 445, 1, 1, &policy)
                .unwrap()
                .rule(),
            "expected-protocol-absent"
        );
    }
}
