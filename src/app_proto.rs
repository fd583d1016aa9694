//! Application-protocol labels shared by identification, sessions, detection and output.
//!
//! The EVE names returned by [`AppProto::as_str`] are part of the output contract
//! (DESIGN §4) and never change meaning.

use std::fmt;

/// An application protocol as named in EVE `app_proto*` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppProto {
    /// FTP control channel.
    Ftp,
    /// FTP data channel linked to a control session.
    FtpData,
    /// FTP control protected by TLS (explicit `AUTH TLS` or implicit on 990).
    Ftps,
    /// Encrypted FTP data channel linked to an FTPS control session.
    FtpsData,
    /// SMB (any dialect family) over NBSS/direct TCP.
    Smb,
    /// TFTP request (RRQ/WRQ) to the server's well-known port.
    Tftp,
    /// TFTP transfer flow between the two transfer identifiers.
    TftpData,
    /// HTTP/1.x (or cleartext HTTP/2 with prior knowledge).
    Http,
    /// TLS (not known to carry FTP).
    Tls,
    /// SSH.
    Ssh,
    /// DNS over UDP or TCP.
    Dns,
    /// SMTP.
    Smtp,
    /// Payload was seen but nothing matched within the probe budget.
    Unknown,
    /// A parser gave up on a flow it had first recognised.
    Failed,
}

impl AppProto {
    /// Every label, in a stable order (used by tests, stats and the policy table).
    pub const ALL: [AppProto; 14] = [
        AppProto::Ftp,
        AppProto::FtpData,
        AppProto::Ftps,
        AppProto::FtpsData,
        AppProto::Smb,
        AppProto::Tftp,
        AppProto::TftpData,
        AppProto::Http,
        AppProto::Tls,
        AppProto::Ssh,
        AppProto::Dns,
        AppProto::Smtp,
        AppProto::Unknown,
        AppProto::Failed,
    ];

    /// The EVE string for this label.
    pub const fn as_str(self) -> &'static str {
        match self {
            AppProto::Ftp => "ftp",
            AppProto::FtpData => "ftp-data",
            AppProto::Ftps => "ftps",
            AppProto::FtpsData => "ftps-data",
            AppProto::Smb => "smb",
            AppProto::Tftp => "tftp",
            AppProto::TftpData => "tftp-data",
            AppProto::Http => "http",
            AppProto::Tls => "tls",
            AppProto::Ssh => "ssh",
            AppProto::Dns => "dns",
            AppProto::Smtp => "smtp",
            AppProto::Unknown => "unknown",
            AppProto::Failed => "failed",
        }
    }

    /// Parses an EVE string back into a label.
    pub fn from_name(s: &str) -> Option<AppProto> {
        AppProto::ALL.iter().copied().find(|p| p.as_str() == s)
    }

    /// True for the protocols this sensor exists to watch (the file-transfer family).
    pub const fn is_file_transfer(self) -> bool {
        matches!(
            self,
            AppProto::Ftp
                | AppProto::FtpData
                | AppProto::Ftps
                | AppProto::FtpsData
                | AppProto::Smb
                | AppProto::Tftp
                | AppProto::TftpData
        )
    }
}

impl fmt::Display for AppProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in AppProto::ALL {
            assert_eq!(AppProto::from_name(p.as_str()), Some(p));
        }
        assert_eq!(AppProto::from_name("gopher"), None);
    }
}
