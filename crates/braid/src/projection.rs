//! The projection: the fixed-size record a torus sends its successor every
//! braid interval. Layout in docs/braid.md §4; every offset below is that
//! table.

use crate::codec::*;
use crate::lattice::Coord;
use crate::table::{ProcRecord, TorusId, CLASSES};
use crate::MAX_TORI;

/// Encoded length in bytes.
pub const PROJ_LEN: usize = 512;
/// `"BRD1"` little-endian.
pub const PROJ_MAGIC: u32 = 0x3144_5242;
/// Layout version.
pub const PROJ_VERSION: u16 = 1;
/// Log entries per projection.
pub const ENTRIES: usize = 8;
/// Migration offers per projection.
pub const OFFERS: usize = 2;
/// Corrective requests per projection.
pub const CORRECTIVES: usize = 2;

/// Flag: the sender is not a member and asks to join.
pub const F_JOIN: u16 = 1;
/// Flag: the sender's mirror of its own predecessor is synced.
pub const F_MIRROR_SYNCED: u16 = 2;
/// Flag: the sender's lease has expired; its processes are not running.
pub const F_FROZEN: u16 = 4;
/// Flag: the sender holds the replica of its former predecessor that it
/// kept when it was fenced, and has not heard from that predecessor since
/// (docs/braid.md §8, hand-over); `replica_of` and `replica_inc` say whose.
pub const F_REPLICA: u16 = 8;
/// Flag (joiners only, never with [`F_REPLICA`]): the sender keeps a
/// *resumed* replica, the mirror of a predecessor that its previous
/// incarnation declared failed and resumed (docs/braid.md §8, resumption
/// not yet replicated); `replica_of` and `replica_inc` say whose.
pub const F_RESUMED: u16 = 16;
const F_ALL: u16 = F_JOIN | F_MIRROR_SYNCED | F_FROZEN | F_REPLICA | F_RESUMED;

const ENTRY_LEN: usize = 40;
const OFF_ENTRIES: usize = 112;
const OFF_OFFERS: usize = OFF_ENTRIES + ENTRIES * ENTRY_LEN;
const OFFER_LEN: usize = 16;
const OFF_CORR: usize = OFF_OFFERS + OFFERS * OFFER_LEN;
const CORR_LEN: usize = 20;
const OFF_RESERVED: usize = OFF_CORR + CORRECTIVES * CORR_LEN;
const _: () = assert!(OFF_RESERVED + 8 == PROJ_LEN);

/// Replication log operation (docs/braid.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
#[repr(u8)]
pub enum Op {
    /// Set the process `Owned`.
    #[default]
    Upsert = 1,
    /// Set the process `InFlight(to)`; the commit point of a migration.
    MigrateOut = 2,
    /// The process exited.
    Remove = 3,
    /// A migration completed.
    Forget = 4,
    /// Start of a session: clear the mirror.
    Reset = 5,
    /// The snapshot is complete.
    SnapshotEnd = 6,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Upsert,
            2 => Op::MigrateOut,
            3 => Op::Remove,
            4 => Op::Forget,
            5 => Op::Reset,
            6 => Op::SnapshotEnd,
            _ => return None,
        })
    }
}

/// One replication log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct LogEntry {
    /// Sequence number in the session (≥ 1).
    pub seq: u64,
    /// Operation.
    pub op: Op,
    /// Destination torus for [`Op::MigrateOut`], else 0.
    pub to: TorusId,
    /// The record (all zero for [`Op::Reset`] and [`Op::SnapshotEnd`]).
    pub rec: ProcRecord,
}

/// A migration offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Offer {
    /// Offered process.
    pub pid: u64,
    /// Its weight.
    pub weight: u32,
    /// Its class.
    pub class: u8,
}

/// Corrective request kind: the sender has real-time demand it cannot serve.
pub const CR_PRIORITY_DEMAND: u32 = 1;
/// Corrective request kind: the sender's mirror of `pid` (a torus) diverged.
pub const CR_DIGEST_ALERT: u32 = 2;

/// A request for the receiver to take corrective action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CorrectiveRequest {
    /// [`CR_PRIORITY_DEMAND`] or [`CR_DIGEST_ALERT`].
    pub kind: u32,
    /// Process or torus concerned.
    pub pid: u64,
    /// Kind-specific argument.
    pub arg: u64,
}

/// A decoded projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Projection {
    /// `F_*` bits.
    pub flags: u16,
    /// Sender.
    pub from: TorusId,
    /// Intended receiver (the sender's successor).
    pub to: TorusId,
    /// Sender's incarnation.
    pub incarnation: u32,
    /// Sender's view epoch.
    pub epoch: u32,
    /// Sender's view members bitmask.
    pub members: u64,
    /// Heartbeat, +1 per projection.
    pub heartbeat: u64,
    /// Sender's time when sent.
    pub send_time: u64,
    /// Sender's braid interval.
    pub interval: u32,
    /// Owned processes.
    pub nprocs: u32,
    /// Runnable weight per class.
    pub load: [u32; CLASSES],
    /// Free capacity in weight units.
    pub free: u32,
    /// Digest of the sender's table.
    pub digest: u64,
    /// Last seq appended in the session.
    pub log_head: u64,
    /// Digest of the sender's previous projection.
    pub chain: u64,
    /// Replication session.
    pub session: u32,
    /// With [`F_REPLICA`] or [`F_RESUMED`]: the torus whose replica the
    /// sender kept (its view may no longer list it, §8); else 0.
    pub replica_of: TorusId,
    /// With [`F_REPLICA`] or [`F_RESUMED`]: the incarnation of
    /// `replica_of` the replica is of; else 0.
    pub replica_inc: u32,
    /// Number of valid `entries`.
    pub n_entries: u8,
    /// Log entries (consecutive seqs).
    pub entries: [LogEntry; ENTRIES],
    /// Number of valid `offers`.
    pub n_offers: u8,
    /// Migration offers.
    pub offers: [Offer; OFFERS],
    /// Number of valid `corrective`.
    pub n_corrective: u8,
    /// Corrective requests.
    pub corrective: [CorrectiveRequest; CORRECTIVES],
}

impl Projection {
    /// The valid log entries.
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries[..usize::from(self.n_entries).min(ENTRIES)]
    }

    /// The valid offers.
    pub fn offers(&self) -> &[Offer] {
        &self.offers[..usize::from(self.n_offers).min(OFFERS)]
    }

    /// The valid corrective requests.
    pub fn corrective(&self) -> &[CorrectiveRequest] {
        &self.corrective[..usize::from(self.n_corrective).min(CORRECTIVES)]
    }

    /// Encode into exactly [`PROJ_LEN`] bytes.
    pub fn encode(&self) -> [u8; PROJ_LEN] {
        let mut b = [0u8; PROJ_LEN];
        put(&mut b, 0, &PROJ_MAGIC.to_le_bytes());
        put(&mut b, 4, &PROJ_VERSION.to_le_bytes());
        put(&mut b, 6, &self.flags.to_le_bytes());
        put(&mut b, 8, &self.from.to_le_bytes());
        put(&mut b, 10, &self.to.to_le_bytes());
        put(&mut b, 12, &self.incarnation.to_le_bytes());
        put(&mut b, 16, &self.epoch.to_le_bytes());
        put(&mut b, 20, &self.replica_inc.to_le_bytes());
        put(&mut b, 24, &self.members.to_le_bytes());
        put(&mut b, 32, &self.heartbeat.to_le_bytes());
        put(&mut b, 40, &self.send_time.to_le_bytes());
        put(&mut b, 48, &self.interval.to_le_bytes());
        put(&mut b, 52, &self.nprocs.to_le_bytes());
        for (i, l) in self.load.iter().enumerate() {
            put(&mut b, 56 + 4 * i, &l.to_le_bytes());
        }
        put(&mut b, 72, &self.free.to_le_bytes());
        put(&mut b, 80, &self.digest.to_le_bytes());
        put(&mut b, 88, &self.log_head.to_le_bytes());
        put(&mut b, 96, &self.chain.to_le_bytes());
        put(&mut b, 104, &self.session.to_le_bytes());
        b[108] = self.n_entries;
        b[109] = self.n_offers;
        b[110] = self.n_corrective;
        // Below `MAX_TORI` in every valid projection; anything else
        // encodes as an id the decoder rejects.
        b[111] = u8::try_from(self.replica_of).unwrap_or(u8::MAX);
        for (i, e) in self.entries().iter().enumerate() {
            encode_entry(&mut b[OFF_ENTRIES + i * ENTRY_LEN..][..ENTRY_LEN], e);
        }
        for (i, o) in self.offers().iter().enumerate() {
            let s = &mut b[OFF_OFFERS + i * OFFER_LEN..][..OFFER_LEN];
            put(s, 0, &o.pid.to_le_bytes());
            put(s, 8, &o.weight.to_le_bytes());
            s[12] = o.class;
        }
        for (i, c) in self.corrective().iter().enumerate() {
            let s = &mut b[OFF_CORR + i * CORR_LEN..][..CORR_LEN];
            put(s, 0, &c.kind.to_le_bytes());
            put(s, 4, &c.pid.to_le_bytes());
            put(s, 12, &c.arg.to_le_bytes());
        }
        let c = crc(&b[..PROJ_LEN - 4]);
        put(&mut b, PROJ_LEN - 4, &c.to_le_bytes());
        b
    }

    /// Decode and validate; every malformed input is an `Err`.
    pub fn decode(b: &[u8]) -> Result<Projection, DecodeError> {
        check_frame(b, PROJ_LEN, PROJ_MAGIC, PROJ_VERSION)?;
        let mut p = Projection {
            flags: u16_at(b, 6),
            from: u16_at(b, 8),
            to: u16_at(b, 10),
            incarnation: u32_at(b, 12),
            epoch: u32_at(b, 16),
            members: u64_at(b, 24),
            heartbeat: u64_at(b, 32),
            send_time: u64_at(b, 40),
            interval: u32_at(b, 48),
            nprocs: u32_at(b, 52),
            load: core::array::from_fn(|i| u32_at(b, 56 + 4 * i)),
            free: u32_at(b, 72),
            digest: u64_at(b, 80),
            log_head: u64_at(b, 88),
            chain: u64_at(b, 96),
            session: u32_at(b, 104),
            n_entries: b[108],
            n_offers: b[109],
            n_corrective: b[110],
            replica_of: b[111].into(),
            replica_inc: u32_at(b, 20),
            ..Projection::default()
        };
        ensure(p.flags & !F_ALL == 0, "flags")?;
        ensure(
            usize::from(p.from) < MAX_TORI && usize::from(p.to) < MAX_TORI,
            "torus id",
        )?;
        ensure(p.from != p.to, "self-addressed")?;
        ensure(all_zero(&b[76..80]), "reserved")?;
        ensure(
            p.flags & (F_REPLICA | F_RESUMED) != (F_REPLICA | F_RESUMED),
            "replica and resumed",
        )?;
        if p.flags & (F_REPLICA | F_RESUMED) != 0 {
            ensure(
                usize::from(p.replica_of) < MAX_TORI && p.replica_of != p.from,
                "replica of",
            )?;
        } else {
            ensure(p.replica_of == 0 && p.replica_inc == 0, "replica of")?;
        }
        ensure(all_zero(&b[OFF_RESERVED..PROJ_LEN - 4]), "reserved")?;
        ensure(p.heartbeat >= 1, "heartbeat")?;
        ensure(p.interval > 0, "interval")?;
        ensure(usize::from(p.n_entries) <= ENTRIES, "n_entries")?;
        ensure(usize::from(p.n_offers) <= OFFERS, "n_offers")?;
        ensure(usize::from(p.n_corrective) <= CORRECTIVES, "n_corrective")?;
        for i in 0..ENTRIES {
            let s = &b[OFF_ENTRIES + i * ENTRY_LEN..][..ENTRY_LEN];
            if i < usize::from(p.n_entries) {
                p.entries[i] = decode_entry(s)?;
                ensure(
                    i == 0 || p.entries[i].seq == p.entries[i - 1].seq.wrapping_add(1),
                    "entry seq",
                )?;
                ensure(p.entries[i].seq <= p.log_head, "entry past head")?;
            } else {
                ensure(all_zero(s), "unused entry")?;
            }
        }
        for i in 0..OFFERS {
            let s = &b[OFF_OFFERS + i * OFFER_LEN..][..OFFER_LEN];
            if i < usize::from(p.n_offers) {
                let o = Offer {
                    pid: u64_at(s, 0),
                    weight: u32_at(s, 8),
                    class: s[12],
                };
                ensure(
                    o.pid != 0 && o.weight > 0 && usize::from(o.class) < CLASSES,
                    "offer",
                )?;
                ensure(all_zero(&s[13..]), "offer reserved")?;
                p.offers[i] = o;
            } else {
                ensure(all_zero(s), "unused offer")?;
            }
        }
        for i in 0..CORRECTIVES {
            let s = &b[OFF_CORR + i * CORR_LEN..][..CORR_LEN];
            if i < usize::from(p.n_corrective) {
                let c = CorrectiveRequest {
                    kind: u32_at(s, 0),
                    pid: u64_at(s, 4),
                    arg: u64_at(s, 12),
                };
                ensure(
                    c.kind == CR_PRIORITY_DEMAND || c.kind == CR_DIGEST_ALERT,
                    "corrective kind",
                )?;
                p.corrective[i] = c;
            } else {
                ensure(all_zero(s), "unused corrective")?;
            }
        }
        Ok(p)
    }
}

fn encode_entry(s: &mut [u8], e: &LogEntry) {
    put(s, 0, &e.seq.to_le_bytes());
    s[8] = e.op as u8;
    s[9] = e.rec.class;
    put(s, 10, &e.to.to_le_bytes());
    put(s, 12, &e.rec.gen.to_le_bytes());
    put(s, 16, &e.rec.pid.to_le_bytes());
    put(s, 24, &e.rec.progress.to_le_bytes());
    put(s, 32, &e.rec.weight.to_le_bytes());
    s[36] = e.rec.home.x;
    s[37] = e.rec.home.y;
    s[38] = e.rec.home.z;
}

fn decode_entry(s: &[u8]) -> Result<LogEntry, DecodeError> {
    let op = Op::from_u8(s[8]).ok_or(DecodeError::Field("op"))?;
    let e = LogEntry {
        seq: u64_at(s, 0),
        op,
        to: u16_at(s, 10),
        rec: ProcRecord {
            pid: u64_at(s, 16),
            class: s[9],
            weight: u32_at(s, 32),
            progress: u64_at(s, 24),
            home: Coord {
                x: s[36],
                y: s[37],
                z: s[38],
            },
            gen: u32_at(s, 12),
        },
    };
    ensure(e.seq >= 1 && s[39] == 0, "entry header")?;
    match op {
        Op::Reset | Op::SnapshotEnd => ensure(all_zero(&s[9..]), "marker body")?,
        Op::Remove | Op::Forget => ensure(
            e.rec.pid != 0 && e.to == 0 && all_zero(&s[24..]) && s[9] == 0 && e.rec.gen == 0,
            "removal",
        )?,
        Op::Upsert | Op::MigrateOut => {
            ensure(
                e.rec.pid != 0 && usize::from(e.rec.class) < CLASSES && e.rec.weight > 0,
                "record",
            )?;
            ensure(usize::from(e.to) < MAX_TORI, "entry to")?;
            ensure(op == Op::MigrateOut || e.to == 0, "upsert to")?;
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> Projection {
        let mut p = Projection {
            flags: F_MIRROR_SYNCED,
            from: 1,
            to: 2,
            incarnation: 3,
            epoch: 4,
            members: 0b111,
            heartbeat: 9,
            send_time: 1234,
            interval: 1000,
            nprocs: 2,
            load: [1, 2, 3, 4],
            free: 77,
            digest: 0xdead,
            log_head: 11,
            chain: 0xbeef,
            session: 2,
            n_entries: 2,
            n_offers: 1,
            n_corrective: 1,
            ..Projection::default()
        };
        let rec = ProcRecord {
            pid: 42,
            class: 2,
            weight: 1024,
            progress: 5,
            home: Coord { x: 1, y: 2, z: 3 },
            gen: 1,
        };
        p.entries[0] = LogEntry {
            seq: 10,
            op: Op::Upsert,
            to: 0,
            rec,
        };
        p.entries[1] = LogEntry {
            seq: 11,
            op: Op::MigrateOut,
            to: 2,
            rec,
        };
        p.offers[0] = Offer {
            pid: 42,
            weight: 1024,
            class: 2,
        };
        p.corrective[0] = CorrectiveRequest {
            kind: CR_PRIORITY_DEMAND,
            pid: 0,
            arg: 5,
        };
        p
    }

    #[test]
    fn round_trips() {
        let p = sample();
        assert_eq!(Projection::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn replica_fields_round_trip_only_with_the_flag() {
        let p = Projection {
            flags: F_JOIN | F_REPLICA,
            replica_of: 63,
            replica_inc: 0xdead_beef,
            ..sample()
        };
        assert_eq!(Projection::decode(&p.encode()), Ok(p));
        let no_flag = Projection { flags: F_JOIN, ..p };
        assert!(Projection::decode(&no_flag.encode()).is_err());
        let own = Projection {
            replica_of: p.from,
            ..p
        };
        assert!(Projection::decode(&own.encode()).is_err());
        let far = Projection {
            replica_of: 64,
            ..p
        };
        assert!(Projection::decode(&far.encode()).is_err());
        let resumed = Projection {
            flags: F_JOIN | F_RESUMED,
            ..p
        };
        assert_eq!(Projection::decode(&resumed.encode()), Ok(resumed));
        let both = Projection {
            flags: F_JOIN | F_REPLICA | F_RESUMED,
            ..p
        };
        assert!(Projection::decode(&both.encode()).is_err());
    }

    #[test]
    fn rejects_wrong_length_and_magic() {
        let b = sample().encode();
        assert_eq!(Projection::decode(&b[..511]), Err(DecodeError::Length));
        let mut c = b;
        c[0] ^= 1;
        assert_eq!(Projection::decode(&c), Err(DecodeError::Magic));
    }

    /// Re-seal a mutated record with a valid CRC so that field checks run.
    fn reseal(mut b: [u8; PROJ_LEN]) -> [u8; PROJ_LEN] {
        let c = crc(&b[..PROJ_LEN - 4]);
        b[PROJ_LEN - 4..].copy_from_slice(&c.to_le_bytes());
        b
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Projection::decode(&bytes);
        }

        #[test]
        fn every_bit_flip_is_rejected(bit in 0usize..PROJ_LEN * 8, bit2 in 0usize..PROJ_LEN * 8) {
            let mut b = sample().encode();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Projection::decode(&b).is_err());
            if bit2 != bit {
                b[bit2 / 8] ^= 1 << (bit2 % 8);
                prop_assert!(Projection::decode(&b).is_err());
            }
        }

        #[test]
        fn resealed_garbage_never_panics(pos in 0usize..PROJ_LEN - 4, val in any::<u8>(), pos2 in 0usize..PROJ_LEN - 4, val2 in any::<u8>()) {
            let mut b = sample().encode();
            b[pos] = val;
            b[pos2] = val2;
            let b = reseal(b);
            if let Ok(p) = Projection::decode(&b) {
                // Whatever decodes must re-encode to the same bytes.
                prop_assert_eq!(p.encode(), b);
            }
        }

        #[test]
        fn random_valid_sealed_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), PROJ_LEN - 8..=PROJ_LEN - 8)) {
            let mut b = [0u8; PROJ_LEN];
            b[..4].copy_from_slice(&PROJ_MAGIC.to_le_bytes());
            b[4..6].copy_from_slice(&PROJ_VERSION.to_le_bytes());
            b[6..PROJ_LEN - 4].copy_from_slice(&body[..PROJ_LEN - 10]);
            let b = reseal(b);
            if let Ok(p) = Projection::decode(&b) {
                prop_assert_eq!(p.encode(), b);
            }
        }
    }
}
