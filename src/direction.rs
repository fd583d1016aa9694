//! Direction of a packet within a flow, relative to the endpoint that opened it.

/// Which way a packet travels, relative to the flow's client (the SYN sender, or the
/// endpoint chosen by the midstream heuristic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server (Suricata's `toserver`).
    ToServer,
    /// Server to client (Suricata's `toclient`).
    ToClient,
}

impl Direction {
    /// The other direction.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    /// 0 for to-server, 1 for to-client: the index into per-direction arrays.
    pub const fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// The EVE suffix (`ts` / `tc`).
    pub const fn short(self) -> &'static str {
        match self {
            Direction::ToServer => "ts",
            Direction::ToClient => "tc",
        }
    }
}
