//! The machine roster: the fixed-size record a machine sends the other
//! members of the machine ring to say which tori (CPUs) it hosts and how
//! loaded they are. It is observation, not protocol: membership, leases
//! and failure detection come from projections and acks; the roster only
//! lets every machine list every torus of the cluster (/proc/braid).
//!
//! Layout (little-endian, 160 bytes):
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 4 | magic `"BRM1"` |
//! | 4 | 2 | version (1) |
//! | 6 | 2 | machine (its torus id in the machine ring) |
//! | 8 | 4 | incarnation |
//! | 12 | 1 | number of tori (≤ 16) |
//! | 13 | 3 | zero |
//! | 16 | 8 | sequence number (newer replaces older) |
//! | 24 | 16 × 8 | per torus: load u32, waiting u16, cpu u8, state u8 (unused slots zero) |
//! | 152 | 4 | zero |
//! | 156 | 4 | CRC32C of bytes 0..156 |

use crate::codec::*;
use crate::table::TorusId;
use crate::MAX_TORI;

/// Encoded length in bytes (distinct from projections' and acks').
pub const ROSTER_LEN: usize = 160;
/// `"BRM1"` little-endian.
pub const ROSTER_MAGIC: u32 = 0x314d_5242;
/// Layout version.
pub const ROSTER_VERSION: u16 = 1;
/// Most tori one machine lists.
pub const ROSTER_TORI: usize = 16;
const OFF_TORI: usize = 24;
const TORUS_LEN: usize = 8;
const _: () = assert!(OFF_TORI + ROSTER_TORI * TORUS_LEN + 8 == ROSTER_LEN);

/// State of a listed torus: out of its machine's CPU ring.
pub const T_OUT: u8 = 0;
/// State of a listed torus: in its machine's CPU ring.
pub const T_UP: u8 = 1;

/// One torus of a machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TorusInfo {
    /// Runnable weight.
    pub load: u32,
    /// Processes waiting in its run queue.
    pub waiting: u16,
    /// The CPU that serves it.
    pub cpu: u8,
    /// [`T_OUT`] or [`T_UP`].
    pub state: u8,
}

/// A decoded roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Roster {
    /// The sending machine.
    pub machine: TorusId,
    /// Its incarnation in the machine ring.
    pub incarnation: u32,
    /// Sender's sequence number.
    pub seq: u64,
    /// Number of valid entries in `tori`.
    pub n: u8,
    /// Its tori.
    pub tori: [TorusInfo; ROSTER_TORI],
}

impl Roster {
    /// The valid entries.
    pub fn tori(&self) -> &[TorusInfo] {
        &self.tori[..usize::from(self.n).min(ROSTER_TORI)]
    }

    /// Encode into the wire layout.
    pub fn encode(&self) -> [u8; ROSTER_LEN] {
        let mut b = [0u8; ROSTER_LEN];
        put(&mut b, 0, &ROSTER_MAGIC.to_le_bytes());
        put(&mut b, 4, &ROSTER_VERSION.to_le_bytes());
        put(&mut b, 6, &self.machine.to_le_bytes());
        put(&mut b, 8, &self.incarnation.to_le_bytes());
        let n = usize::from(self.n).min(ROSTER_TORI);
        b[12] = n as u8;
        put(&mut b, 16, &self.seq.to_le_bytes());
        for (i, t) in self.tori[..n].iter().enumerate() {
            let o = OFF_TORI + i * TORUS_LEN;
            put(&mut b, o, &t.load.to_le_bytes());
            put(&mut b, o + 4, &t.waiting.to_le_bytes());
            b[o + 6] = t.cpu;
            b[o + 7] = t.state;
        }
        let c = crc(&b[..ROSTER_LEN - 4]);
        put(&mut b, ROSTER_LEN - 4, &c.to_le_bytes());
        b
    }

    /// Decode and validate (length, magic, version, CRC, ranges, zeros).
    pub fn decode(b: &[u8]) -> Result<Roster, DecodeError> {
        check_frame(b, ROSTER_LEN, ROSTER_MAGIC, ROSTER_VERSION)?;
        let mut r = Roster {
            machine: u16_at(b, 6),
            incarnation: u32_at(b, 8),
            n: b[12],
            seq: u64_at(b, 16),
            ..Roster::default()
        };
        ensure(usize::from(r.machine) < MAX_TORI, "machine id")?;
        ensure(usize::from(r.n) <= ROSTER_TORI, "torus count")?;
        ensure(all_zero(&b[13..16]), "reserved")?;
        ensure(all_zero(&b[ROSTER_LEN - 8..ROSTER_LEN - 4]), "reserved")?;
        let n = usize::from(r.n);
        for i in 0..ROSTER_TORI {
            let o = OFF_TORI + i * TORUS_LEN;
            let e = &b[o..o + TORUS_LEN];
            if i >= n {
                ensure(all_zero(e), "unused torus slot")?;
                continue;
            }
            let t = TorusInfo {
                load: u32_at(b, o),
                waiting: u16_at(b, o + 4),
                cpu: b[o + 6],
                state: b[o + 7],
            };
            ensure(t.state <= T_UP, "torus state")?;
            r.tori[i] = t;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Roster {
        let mut r = Roster {
            machine: 2,
            incarnation: 7,
            seq: 99,
            n: 3,
            ..Roster::default()
        };
        for i in 0..3 {
            r.tori[i] = TorusInfo {
                load: 1024 * i as u32,
                waiting: i as u16,
                cpu: i as u8,
                state: T_UP,
            };
        }
        r
    }

    #[test]
    fn round_trip() {
        let r = sample();
        assert_eq!(Roster::decode(&r.encode()), Ok(r));
        assert_eq!(r.tori().len(), 3);
    }

    #[test]
    fn rejects_damage() {
        let b = sample().encode();
        for i in 0..ROSTER_LEN {
            let mut c = b;
            c[i] ^= 0x40;
            assert!(Roster::decode(&c).is_err(), "flip at byte {i} accepted");
        }
        assert_eq!(Roster::decode(&b[..100]), Err(DecodeError::Length));
        // Not confused with the other records.
        assert_ne!(ROSTER_LEN, crate::projection::PROJ_LEN);
        assert_ne!(ROSTER_LEN, crate::ack::ACK_LEN);
    }

    #[test]
    fn rejects_bad_fields_with_good_crc() {
        let reseal = |mut b: [u8; ROSTER_LEN]| {
            let c = crc(&b[..ROSTER_LEN - 4]);
            put(&mut b, ROSTER_LEN - 4, &c.to_le_bytes());
            b
        };
        let mut b = sample().encode();
        b[12] = 17;
        assert!(Roster::decode(&reseal(b)).is_err());
        let mut b = sample().encode();
        b[OFF_TORI + 7] = 5;
        assert!(Roster::decode(&reseal(b)).is_err());
        let mut b = sample().encode();
        b[OFF_TORI + 3 * TORUS_LEN] = 1; // an unused slot
        assert!(Roster::decode(&reseal(b)).is_err());
        let mut b = sample().encode();
        put(&mut b, 6, &(MAX_TORI as u16).to_le_bytes());
        assert!(Roster::decode(&reseal(b)).is_err());
    }
}
