//! Community ID v1 flow hashes (seed 0), so our records join with Zeek's and Suricata's.
//!
//! Written by hand because the algorithm is small and pinned by the spec: SHA-1 over
//! `seed (u16 BE) · saddr · daddr · proto · 0 · sport (BE) · dport (BE)` with the endpoints
//! ordered so that both directions hash the same, then base64 with a `1:` prefix. For ICMP
//! the type/code pair stands in for the ports, and a request is ordered as its reply would be.

use std::net::IpAddr;

/// IANA protocol numbers the spec treats specially.
const ICMP: u8 = 1;
const ICMP6: u8 = 58;

/// Computes the Community ID v1 string for one packet's (or flow's) 5-tuple.
///
/// For ICMP/ICMPv6 pass the type as `sport` and the code as `dport`.
pub fn community_id(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> String {
    let (mut sport, mut dport) = (sport, dport);
    let mut one_way = false;
    if proto == ICMP || proto == ICMP6 {
        let (t, code) = (sport as u8, dport as u8);
        match icmp_counterpart(proto, t) {
            Some(other) => {
                sport = u16::from(t);
                dport = u16::from(other);
            }
            None => {
                one_way = true;
                sport = u16::from(t);
                dport = u16::from(code);
            }
        }
    }
    let ordered = one_way || (ip_bytes(&src), sport) < (ip_bytes(&dst), dport);
    let (a, ap, b, bp) = if ordered || (src == dst && sport <= dport) {
        (src, sport, dst, dport)
    } else {
        (dst, dport, src, sport)
    };
    let mut h = sha1_smol::Sha1::new();
    h.update(&seed.to_be_bytes());
    h.update(&ip_bytes(&a));
    h.update(&ip_bytes(&b));
    h.update(&[proto, 0]);
    h.update(&ap.to_be_bytes());
    h.update(&bp.to_be_bytes());
    let digest = h.digest().bytes();
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64_into(&digest, &mut out);
    out
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The type that answers (or is answered by) `t`, for the ICMP message pairs the spec lists.
fn icmp_counterpart(proto: u8, t: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if proto == ICMP {
        &[
            (8, 0),
            (0, 8),
            (13, 14),
            (14, 13),
            (15, 16),
            (16, 15),
            (10, 9),
            (9, 10),
            (17, 18),
            (18, 17),
        ]
    } else {
        &[
            (128, 129),
            (129, 128),
            (133, 134),
            (134, 133),
            (135, 136),
            (136, 135),
            (130, 131),
            (131, 130),
            (144, 145),
            (145, 144),
        ]
    };
    pairs.iter().find(|(a, _)| *a == t).map(|(_, b)| *b)
}

fn base64_into(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(*ALPHABET.get((v & 63) as usize).unwrap_or(&b'A'));
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // Vectors from the Community ID spec's baseline (seed 0).
    #[test]
    fn spec_vectors() {
        assert_eq!(
            community_id(0, ip("1.2.3.4"), ip("5.6.7.8"), 6, 1122, 3344),
            "1:wCb3OG7yAFWelaUydu0D+125CLM="
        );
        assert_eq!(
            community_id(0, ip("1.2.3.4"), ip("5.6.7.8"), 17, 1122, 3344),
            "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="
        );
        assert_eq!(
            community_id(0, ip("1.2.3.4"), ip("5.6.7.8"), 1, 8, 0),
            "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="
        );
        assert_eq!(
            community_id(
                0,
                ip("fe80::200:86ff:fe05:80da"),
                ip("fe80::260:97ff:fe07:69ea"),
                58,
                135,
                0
            ),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="
        );
    }

    #[test]
    fn independent_vector() {
        assert_eq!(
            community_id(0, ip("192.168.0.1"), ip("10.0.0.5"), 6, 12345, 80),
            "1:JHvDxB6S6/K68OntUBf4DJZYvkM="
        );
    }

    #[test]
    fn symmetric_for_both_directions() {
        let a = community_id(0, ip("10.0.0.1"), ip("203.0.113.9"), 6, 50000, 21);
        let b = community_id(0, ip("203.0.113.9"), ip("10.0.0.1"), 6, 21, 50000);
        assert_eq!(a, b);
        let a = community_id(0, ip("5.6.7.8"), ip("1.2.3.4"), 1, 0, 0);
        assert_eq!(a, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=");
    }

    #[test]
    fn base64_padding() {
        let mut s = String::new();
        base64_into(b"f", &mut s);
        assert_eq!(s, "Zg==");
        s.clear();
        base64_into(b"foob", &mut s);
        assert_eq!(s, "Zm9vYg==");
    }
}
