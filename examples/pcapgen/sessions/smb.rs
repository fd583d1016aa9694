//! An SMB connection: NEGOTIATE, two SESSION_SETUP round trips, TREE_CONNECTs, and
//! CREATE/READ/WRITE/CLOSE per file, with optional SMB3 encryption after session setup.
//!
//! Reads and writes move the file in 64 KiB requests, each answered before the next (a
//! cautious client; real ones pipeline under credits, which changes timing, not bytes).

use std::io::Write;
use std::net::IpAddr;

use anyhow::Result;
use xferwatch::app_proto::AppProto;
use xferwatch::direction::Direction;

use crate::conv::{Conv, Link};
use crate::ctx::Ctx;
use crate::net::Endpoint;
use crate::payload::{Fill, Payload};
use crate::proto::smb::{self, Open};
use crate::truth::{FileDir, FileTruth, SessionKind, Verdict};

/// Largest READ/WRITE request.
const IO_CHUNK: u64 = 65_536;

/// One thing the client does on a share.
#[derive(Debug, Clone)]
pub enum SmbOp {
    /// CREATE then READ the whole file.
    Read {
        /// Path relative to the share.
        name: String,
        /// File size.
        size: u64,
    },
    /// CREATE (overwrite) then WRITE the whole file.
    Write {
        /// Path relative to the share.
        name: String,
        /// Bytes to write.
        size: u64,
    },
}

/// Everything that varies between SMB connections.
#[derive(Debug, Clone)]
pub struct SmbPlan {
    /// Client.
    pub client: IpAddr,
    /// Server.
    pub server: IpAddr,
    /// TCP port (445, 139, or something unusual for a mismatch).
    pub port: u16,
    /// Server NetBIOS/DNS name used in UNC paths.
    pub server_name: String,
    /// Share name for the file operations.
    pub share: String,
    /// Dialect the server selects.
    pub dialect: u16,
    /// Encrypt everything after session setup (SMB 3.x only).
    pub encrypt: bool,
    /// Also open IPC$ and bind to the `srvsvc` pipe first, as Explorer does.
    pub ipc: bool,
    /// Stop after NEGOTIATE (a probe, or an SMB2 handshake on a strange port).
    pub negotiate_only: bool,
    /// Start with an RFC 1002 session request (port 139 style).
    pub netbios: bool,
    /// File operations in order.
    pub ops: Vec<SmbOp>,
    /// Path characteristics.
    pub link: Link,
    /// 802.1Q tag.
    pub vlan: Option<u16>,
    /// Expected verdict.
    pub verdict: Option<Verdict>,
}

impl SmbPlan {
    /// SMB 3.0.2 on 445 without encryption or IPC$.
    pub fn new(
        client: IpAddr,
        server: IpAddr,
        server_name: &str,
        share: &str,
        ops: Vec<SmbOp>,
    ) -> SmbPlan {
        SmbPlan {
            client,
            server,
            port: 445,
            server_name: server_name.to_owned(),
            share: share.to_owned(),
            dialect: 0x0302,
            encrypt: false,
            ipc: false,
            negotiate_only: false,
            netbios: false,
            ops,
            link: Link::LAN,
            vlan: None,
            verdict: None,
        }
    }
}

/// The connection while being built: message ids and the session id live here.
struct Client<'a, W: Write> {
    ctx: &'a mut Ctx<W>,
    conv: Conv,
    mid: u64,
    sid: u64,
    encrypted: bool,
}

impl<W: Write> Client<'_, W> {
    /// Sends one SMB2 message (plus `data` bytes of generated content after it), framed by
    /// NBSS, inside a TRANSFORM header once the session is encrypted.
    fn send(&mut self, dir: Direction, msg: Vec<u8>, data: Option<(Fill, u64, u64)>) {
        let data_len = data.map_or(0, |d| d.2);
        let payload = if self.encrypted {
            let original = msg.len() + data_len as usize;
            let mut head = smb::nbss(smb::TRANSFORM_LEN + original).to_vec();
            head.extend_from_slice(&smb::transform_header(
                &mut self.ctx.rng,
                self.sid,
                original,
            ));
            Payload::with_body(head, Fill::Random, self.ctx.rng.next_u64(), original as u64)
        } else {
            let mut head = smb::nbss(msg.len() + data_len as usize).to_vec();
            head.extend_from_slice(&msg);
            match data {
                Some((fill, seed, len)) => Payload::with_body(head, fill, seed, len),
                None => Payload::bytes(head),
            }
        };
        self.conv.send(dir, payload);
    }

    fn next_mid(&mut self) -> u64 {
        let m = self.mid;
        self.mid += 1;
        m
    }

    fn tree_connect(&mut self, path: &str, tid: u32, pipe: bool) {
        let mid = self.next_mid();
        self.send(
            Direction::ToServer,
            smb::tree_connect_request(mid, self.sid, path),
            None,
        );
        self.send(
            Direction::ToClient,
            smb::tree_connect_response(mid, self.sid, tid, pipe),
            None,
        );
    }

    fn create(&mut self, tid: u32, name: &str, open: Open, size: u64) -> [u8; 16] {
        let mut fid = [0u8; 16];
        for (d, s) in fid.iter_mut().zip(self.ctx.rng.bytes(16)) {
            *d = s;
        }
        let mid = self.next_mid();
        self.send(
            Direction::ToServer,
            smb::create_request(mid, self.sid, tid, name, open),
            None,
        );
        let created = open == Open::Write;
        self.send(
            Direction::ToClient,
            smb::create_response(
                mid,
                self.sid,
                tid,
                &fid,
                if created { 0 } else { size },
                created,
            ),
            None,
        );
        fid
    }

    fn close(&mut self, tid: u32, fid: &[u8; 16], size: u64) {
        let mid = self.next_mid();
        self.send(
            Direction::ToServer,
            smb::close_request(mid, self.sid, tid, fid),
            None,
        );
        self.send(
            Direction::ToClient,
            smb::close_response(mid, self.sid, tid, size),
            None,
        );
    }

    fn disconnect(&mut self, tid: u32) {
        let mid = self.next_mid();
        self.send(
            Direction::ToServer,
            smb::simple(smb::TREE_DISCONNECT, mid, self.sid, tid, false),
            None,
        );
        self.send(
            Direction::ToClient,
            smb::simple(smb::TREE_DISCONNECT, mid, self.sid, tid, true),
            None,
        );
    }
}

/// Builds and commits one SMB connection starting at `start`; returns its end time.
pub fn smb_session<W: Write>(ctx: &mut Ctx<W>, plan: &SmbPlan, start: u64) -> Result<u64> {
    let port = ctx.rng.ephemeral_port();
    let conv = ctx
        .tcp(
            Endpoint::new(plan.client, port),
            Endpoint::new(plan.server, plan.port),
            start,
            plan.link,
        )
        .with_vlan(plan.vlan);
    let mut c = Client {
        ctx,
        conv,
        mid: 0,
        sid: 0,
        encrypted: false,
    };
    c.conv.handshake();
    if plan.netbios {
        let req = smb::nbss_session_request(&plan.server_name, "WS-0042");
        c.conv.send(Direction::ToServer, Payload::bytes(req));
        c.conv.send(
            Direction::ToClient,
            Payload::bytes(smb::nbss_positive_response()),
        );
    }
    let offered: Vec<u16> = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]
        .into_iter()
        .filter(|d| *d <= plan.dialect.max(0x0302))
        .collect();
    let req = smb::negotiate_request(&mut c.ctx.rng, &offered);
    let resp = smb::negotiate_response(&mut c.ctx.rng, plan.dialect, 74);
    c.send(Direction::ToServer, req, None);
    c.send(Direction::ToClient, resp, None);
    c.mid = 1;
    let mut trees = Vec::new();
    let mut files = Vec::new();
    if plan.negotiate_only {
        c.conv.close(Direction::ToServer);
    } else {
        c.sid = 0x0000_1000_0000_0000 | (c.ctx.rng.next_u64() & 0xFFFF_FFFF);
        let sid = c.sid;
        let rng = &mut c.ctx.rng;
        let (r1, a1) = (
            smb::session_setup_request(rng, 1, 0, 74),
            smb::session_setup_response(
                rng,
                1,
                sid,
                smb::STATUS_MORE_PROCESSING_REQUIRED,
                250,
                false,
            ),
        );
        let (r2, a2) = (
            smb::session_setup_request(rng, 2, sid, 390),
            smb::session_setup_response(rng, 2, sid, 0, 0, plan.encrypt),
        );
        c.send(Direction::ToServer, r1, None);
        c.send(Direction::ToClient, a1, None);
        c.send(Direction::ToServer, r2, None);
        c.send(Direction::ToClient, a2, None);
        c.mid = 3;
        c.encrypted = plan.encrypt;

        if plan.ipc {
            let path = format!("\\\\{}\\IPC$", plan.server_name);
            c.tree_connect(&path, 1, true);
            trees.push(path.clone());
            let fid = c.create(1, "srvsvc", Open::Pipe, 0);
            let bind = smb::dcerpc_bind();
            let ack = smb::dcerpc_bind_ack();
            let (bind_len, ack_len) = (bind.len() as u64, ack.len() as u64);
            let mid = c.next_mid();
            let mut w = smb::write_request_head(mid, sid, 1, &fid, 0, bind_len as u32);
            w.extend_from_slice(&bind);
            c.send(Direction::ToServer, w, None);
            c.send(
                Direction::ToClient,
                smb::write_response(mid, sid, 1, bind_len as u32),
                None,
            );
            let mid = c.next_mid();
            c.send(
                Direction::ToServer,
                smb::read_request(mid, sid, 1, &fid, 0, 1024),
                None,
            );
            let mut r = smb::read_response_head(mid, sid, 1, ack_len as u32);
            r.extend_from_slice(&ack);
            c.send(Direction::ToClient, r, None);
            c.close(1, &fid, 0);
            let mut f = FileTruth::new("srvsvc", 0, FileDir::Upload, "CREATE");
            f.share = Some(path);
            f.pipe = true;
            f.written_bytes = Some(bind_len);
            f.read_bytes = Some(ack_len);
            f.flow = Some(c.conv.id());
            files.push(f);
        }

        let path = format!("\\\\{}\\{}", plan.server_name, plan.share);
        let tid = 5;
        c.tree_connect(&path, tid, false);
        trees.push(path.clone());
        for op in &plan.ops {
            c.conv.wait(c.ctx.rng.range(20_000, 400_000));
            let (name, size, write) = match op {
                SmbOp::Read { name, size } => (name, *size, false),
                SmbOp::Write { name, size } => (name, *size, true),
            };
            let fid = c.create(
                tid,
                name,
                if write { Open::Write } else { Open::Read },
                size,
            );
            let seed = c.ctx.rng.next_u64();
            let mut off = 0;
            while off < size {
                let len = (size - off).min(IO_CHUNK);
                let mid = c.next_mid();
                if write {
                    let head = smb::write_request_head(mid, sid, tid, &fid, off, len as u32);
                    c.send(
                        Direction::ToServer,
                        head,
                        Some((Fill::Random, seed ^ off, len)),
                    );
                    c.send(
                        Direction::ToClient,
                        smb::write_response(mid, sid, tid, len as u32),
                        None,
                    );
                } else {
                    c.send(
                        Direction::ToServer,
                        smb::read_request(mid, sid, tid, &fid, off, len as u32),
                        None,
                    );
                    let head = smb::read_response_head(mid, sid, tid, len as u32);
                    c.send(
                        Direction::ToClient,
                        head,
                        Some((Fill::Random, seed ^ off, len)),
                    );
                }
                off += len;
            }
            c.close(tid, &fid, size);
            let (dir, cmd) = if write {
                (FileDir::Upload, "WRITE")
            } else {
                (FileDir::Download, "READ")
            };
            let mut f = FileTruth::new(name, size, dir, cmd);
            f.share = Some(path.clone());
            f.flow = Some(c.conv.id());
            if write {
                f.written_bytes = Some(size);
            } else {
                f.read_bytes = Some(size);
            }
            files.push(f);
        }
        c.disconnect(tid);
        let mid = c.next_mid();
        c.send(
            Direction::ToServer,
            smb::simple(smb::LOGOFF, mid, sid, 0, false),
            None,
        );
        c.send(
            Direction::ToClient,
            smb::simple(smb::LOGOFF, mid, sid, 0, true),
            None,
        );
        c.conv.close(Direction::ToServer);
    }
    let end = c.conv.now();
    let ctx = c.ctx;
    let mut conv = c.conv;
    conv.meta.app_proto = Some(AppProto::Smb);
    conv.meta.verdict = plan.verdict;
    conv.meta.files = files.clone();
    conv.meta.note = format!(
        "SMB {}{}{}",
        smb::dialect_name(plan.dialect),
        if plan.encrypt { " encrypted" } else { "" },
        if plan.negotiate_only {
            ", negotiate only"
        } else {
            ""
        }
    );
    let truth = ctx.commit(conv);
    ctx.session(
        SessionKind::Smb {
            dialect: smb::dialect_name(plan.dialect),
            encrypted: plan.encrypt,
            trees,
        },
        &[&truth],
        files,
    );
    Ok(end)
}

/// An SMB1-only exchange: (optional NBSS session request,) SMB1 NEGOTIATE request and
/// response, then the client hangs up. Returns the end time.
pub fn smb1_negotiate<W: Write>(
    ctx: &mut Ctx<W>,
    client: IpAddr,
    server: IpAddr,
    port: u16,
    start: u64,
) -> Result<u64> {
    let cport = ctx.rng.ephemeral_port();
    let mut conv = ctx.tcp(
        Endpoint::new(client, cport),
        Endpoint::new(server, port),
        start,
        Link::LAN,
    );
    conv.handshake();
    if port == 139 {
        conv.send(
            Direction::ToServer,
            Payload::bytes(smb::nbss_session_request("FS01", "WS-0042")),
        );
        conv.send(
            Direction::ToClient,
            Payload::bytes(smb::nbss_positive_response()),
        );
    }
    conv.send(
        Direction::ToServer,
        Payload::bytes(smb::framed(&smb::smb1_negotiate_request())),
    );
    let resp = smb::smb1_negotiate_response(&mut ctx.rng);
    conv.send(Direction::ToClient, Payload::bytes(smb::framed(&resp)));
    conv.close(Direction::ToServer);
    conv.meta.app_proto = Some(AppProto::Smb);
    conv.meta.note = format!(
        "SMB1 NEGOTIATE (NT LM 0.12) on {port}{}",
        if port == 139 {
            " after an NBSS session request"
        } else {
            ""
        }
    );
    let end = conv.now();
    let truth = ctx.commit(conv);
    ctx.session(
        SessionKind::Smb {
            dialect: "NT LM 0.12".to_owned(),
            encrypted: false,
            trees: Vec::new(),
        },
        &[&truth],
        Vec::new(),
    );
    Ok(end)
}
