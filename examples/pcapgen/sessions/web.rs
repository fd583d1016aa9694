//! Background conversations: DNS, HTTP, TLS, SSH and SMTP.
//!
//! These return the built flow without committing it, so a scenario can relabel it (a
//! mismatch case) before handing it to the context.

use std::io::Write;
use std::net::IpAddr;

use xferwatch::app_proto::AppProto;
use xferwatch::direction::Direction;

use crate::conv::{Conv, Link};
use crate::ctx::Ctx;
use crate::net::Endpoint;
use crate::payload::{Fill, Payload};
use crate::proto::{misc, tls};

/// Where and when a single-flow conversation happens.
#[derive(Debug, Clone, Copy)]
pub struct At {
    /// Client address (its port is ephemeral).
    pub client: IpAddr,
    /// Server endpoint.
    pub server: Endpoint,
    /// Start time, µs.
    pub start: u64,
    /// Path characteristics.
    pub link: Link,
}

impl At {
    /// A conversation from `client` to `server` starting at `start`.
    pub fn new(client: IpAddr, server: Endpoint, start: u64, link: Link) -> At {
        At {
            client,
            server,
            start,
            link,
        }
    }
}

/// A TCP flow for `at` with a fresh ephemeral client port.
fn open<W: Write>(ctx: &mut Ctx<W>, at: At) -> Conv {
    let port = ctx.rng.ephemeral_port();
    ctx.tcp(Endpoint::new(at.client, port), at.server, at.start, at.link)
}

/// A DNS lookup of `name` answered with `answer`.
pub fn dns<W: Write>(
    ctx: &mut Ctx<W>,
    client: IpAddr,
    resolver: IpAddr,
    name: &str,
    answer: IpAddr,
    start: u64,
) -> Conv {
    let port = ctx.rng.ephemeral_port();
    let id = ctx.rng.next_u32() as u16;
    let qtype = if answer.is_ipv4() {
        misc::A
    } else {
        misc::AAAA
    };
    let mut c = ctx.udp(
        Endpoint::new(client, port),
        Endpoint::new(resolver, 53),
        start,
        Link::LAN,
    );
    c.send(
        Direction::ToServer,
        Payload::bytes(misc::dns_query(id, name, qtype)),
    );
    c.wait(ctx.rng.range(200, 20_000));
    c.send(
        Direction::ToClient,
        Payload::bytes(misc::dns_response(id, name, answer)),
    );
    c.meta.app_proto = Some(AppProto::Dns);
    c.meta.note = format!("DNS {name} -> {answer}");
    c
}

/// One request on a web connection.
#[derive(Debug, Clone, Copy)]
pub enum Req {
    /// GET with a response body of this size.
    Get(u64),
    /// POST of this many bytes, answered with a small JSON body.
    Post(u64),
}

/// An HTTP/1.1 keep-alive connection: requests separated by think time, client closes.
pub fn http<W: Write>(ctx: &mut Ctx<W>, at: At, host: &str, reqs: &[Req], think_us: u64) -> Conv {
    let mut c = open(ctx, at);
    c.handshake();
    for (i, r) in reqs.iter().enumerate() {
        if i > 0 {
            c.wait(ctx.rng.range(think_us / 2, think_us * 3 / 2 + 1));
        }
        let seed = ctx.rng.next_u64();
        match *r {
            Req::Get(len) => {
                let path = format!("/assets/{:08x}.html", seed as u32);
                c.send(
                    Direction::ToServer,
                    Payload::bytes(misc::http_get(host, &path)),
                );
                c.wait(ctx.rng.range(500, 30_000));
                let head = misc::http_response_head("200 OK", "text/html; charset=utf-8", len);
                c.send(
                    Direction::ToClient,
                    Payload::with_body(head, Fill::Text, seed, len),
                );
            }
            Req::Post(len) => {
                let head =
                    misc::http_post_head(host, "/api/v1/upload", "application/octet-stream", len);
                c.send(
                    Direction::ToServer,
                    Payload::with_body(head, Fill::Random, seed, len),
                );
                c.wait(ctx.rng.range(500, 30_000));
                let body = b"{\"status\":\"ok\"}".to_vec();
                let mut resp =
                    misc::http_response_head("201 Created", "application/json", body.len() as u64);
                resp.extend_from_slice(&body);
                c.send(Direction::ToClient, Payload::bytes(resp));
            }
        }
    }
    c.close(Direction::ToServer);
    c.meta.app_proto = Some(AppProto::Http);
    c.meta.note = format!("HTTP/1.1 to {host}, {} request(s)", reqs.len());
    c
}

/// A TLS 1.3 connection: handshake, then (request, response) plaintext sizes exchanged as
/// application-data records with think time between them; the client closes.
pub fn tls<W: Write>(
    ctx: &mut Ctx<W>,
    at: At,
    sni: &str,
    alpn: &[&str],
    exchanges: &[(u64, u64)],
    think_us: u64,
) -> Conv {
    let mut c = open(ctx, at);
    c.handshake();
    let rng = &mut ctx.rng;
    c.send(
        Direction::ToServer,
        Payload::bytes(tls::client_hello(rng, sni, alpn)),
    );
    let cert = rng.range(2_000, 4_500) as usize;
    c.send(
        Direction::ToClient,
        Payload::bytes(tls::server_flight(rng, cert)),
    );
    c.send(
        Direction::ToServer,
        Payload::bytes(tls::client_finished(rng)),
    );
    for (i, (up, down)) in exchanges.iter().enumerate() {
        if i > 0 {
            c.wait(ctx.rng.range(think_us / 2, think_us * 3 / 2 + 1));
        }
        c.send(
            Direction::ToServer,
            Payload::tls_app_data(ctx.rng.next_u64(), *up),
        );
        c.wait(ctx.rng.range(500, 40_000));
        c.send(
            Direction::ToClient,
            Payload::tls_app_data(ctx.rng.next_u64(), *down),
        );
    }
    c.close(Direction::ToServer);
    c.meta.app_proto = Some(AppProto::Tls);
    c.meta.note = format!("TLS to {sni}, {} exchange(s)", exchanges.len());
    c
}

/// A TCP connection for `at` through the SSH banners, key exchange and first encrypted
/// packets (user authentication), ready for the session's traffic.
fn ssh_open<W: Write>(ctx: &mut Ctx<W>, at: At) -> Conv {
    let mut c = open(ctx, at);
    c.handshake();
    c.send(
        Direction::ToClient,
        Payload::bytes(misc::ssh_banner("OpenSSH_9.6p1 Ubuntu-3ubuntu13.5")),
    );
    c.send(
        Direction::ToServer,
        Payload::bytes(misc::ssh_banner("OpenSSH_9.9")),
    );
    let rng = &mut ctx.rng;
    c.send(Direction::ToServer, Payload::bytes(misc::ssh_kexinit(rng)));
    c.send(Direction::ToClient, Payload::bytes(misc::ssh_kexinit(rng)));
    c.send(
        Direction::ToServer,
        Payload::bytes(misc::ssh_ecdh_init(rng)),
    );
    c.send(
        Direction::ToClient,
        Payload::bytes(misc::ssh_ecdh_reply(rng)),
    );
    c.send(Direction::ToServer, Payload::bytes(misc::ssh_newkeys(rng)));
    c.send(
        Direction::ToServer,
        Payload::bytes(misc::ssh_encrypted(rng, 44)),
    );
    c.send(
        Direction::ToClient,
        Payload::bytes(misc::ssh_encrypted(rng, 560)),
    );
    c
}

/// An SSH session: banners, KEXINIT, key exchange, then `rounds` encrypted keystroke and
/// output packets; the client closes.
pub fn ssh<W: Write>(ctx: &mut Ctx<W>, at: At, rounds: u32) -> Conv {
    let mut c = ssh_open(ctx, at);
    for _ in 0..rounds {
        c.wait(ctx.rng.range(80_000, 900_000));
        c.send(
            Direction::ToServer,
            Payload::bytes(misc::ssh_encrypted(&mut ctx.rng, 36)),
        );
        let out = ctx.rng.range(36, 1_200) as usize;
        c.send(
            Direction::ToClient,
            Payload::bytes(misc::ssh_encrypted(&mut ctx.rng, out)),
        );
    }
    c.close(Direction::ToServer);
    c.meta.app_proto = Some(AppProto::Ssh);
    c.meta.note = format!("SSH session, {rounds} interactive round(s)");
    c
}

/// An `scp` upload over SSH: the key exchange, then `len` encrypted bytes from the client
/// (random, as ciphertext is) and a short confirmation back; the client closes.
pub fn scp_upload<W: Write>(ctx: &mut Ctx<W>, at: At, len: u64) -> Conv {
    let mut c = ssh_open(ctx, at);
    let seed = ctx.rng.next_u64();
    c.send(
        Direction::ToServer,
        Payload::generated(Fill::Random, seed, len),
    );
    c.send(
        Direction::ToClient,
        Payload::bytes(misc::ssh_encrypted(&mut ctx.rng, 52)),
    );
    c.close(Direction::ToServer);
    c.meta.app_proto = Some(AppProto::Ssh);
    c.meta.note = format!("SSH scp upload of {len} bytes");
    c
}

/// An SMTP submission of a `body_len`-byte message; the server closes after QUIT.
pub fn smtp<W: Write>(ctx: &mut Ctx<W>, at: At, body_len: u64) -> Conv {
    let mut c = open(ctx, at);
    c.handshake();
    for (cmd, reply) in
        misc::smtp_dialogue("mx.example.org", "alerts@corp.example", "ops@example.org")
    {
        if !cmd.is_empty() {
            c.send(Direction::ToServer, Payload::bytes(cmd));
        }
        c.send(Direction::ToClient, Payload::bytes(reply));
    }
    let seed = ctx.rng.next_u64();
    let head =
        b"Subject: nightly report\r\nFrom: alerts@corp.example\r\nTo: ops@example.org\r\n\r\n"
            .to_vec();
    c.send(
        Direction::ToServer,
        Payload::with_body(head, Fill::Text, seed, body_len),
    );
    c.send(Direction::ToServer, Payload::bytes(b"\r\n.\r\n".to_vec()));
    c.send(
        Direction::ToClient,
        Payload::bytes(b"250 2.0.0 Ok: queued as 4Xk2Lm0v1Qz\r\n".to_vec()),
    );
    c.send(Direction::ToServer, Payload::bytes(b"QUIT\r\n".to_vec()));
    c.send(
        Direction::ToClient,
        Payload::bytes(b"221 2.0.0 Bye\r\n".to_vec()),
    );
    c.close(Direction::ToClient);
    c.meta.app_proto = Some(AppProto::Smtp);
    c.meta.note = "SMTP submission".to_owned();
    c
}
