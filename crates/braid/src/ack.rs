//! The ack: the fixed-size record a torus returns to its predecessor, the
//! backward half of chain replication (docs/braid.md §5). It lets the
//! predecessor truncate its log, commit migrations, renew its lease and
//! learn the view.

use crate::codec::*;
use crate::table::TorusId;
use crate::MAX_TORI;

/// Encoded length in bytes.
pub const ACK_LEN: usize = 80;
/// `"BRA1"` little-endian.
pub const ACK_MAGIC: u32 = 0x3141_5242;
/// Layout version.
pub const ACK_VERSION: u16 = 1;

/// Flag: the acked torus was declared failed and must restart.
pub const A_FENCED: u16 = 1;
/// Flag: the acker's mirror is unusable; start a new session.
pub const A_NEED_RESYNC: u16 = 2;
/// Flag: do not start migrations to the acker.
pub const A_NO_MIGRATE: u16 = 4;
/// Flag: the acked torus was admitted in place of its silent predecessor;
/// it resumes the replica it kept (docs/braid.md §8, hand-over).
pub const A_TAKE_OVER: u16 = 8;
const A_ALL: u16 = A_FENCED | A_NEED_RESYNC | A_NO_MIGRATE | A_TAKE_OVER;

/// A decoded ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ack {
    /// `A_*` bits.
    pub flags: u16,
    /// The acker.
    pub from: TorusId,
    /// The acked torus.
    pub to: TorusId,
    /// Acker's view epoch.
    pub epoch: u32,
    /// Acker's view members.
    pub members: u64,
    /// Highest heartbeat accepted from `to` (0: none, a view notice).
    pub heard_hb: u64,
    /// Session that `applied` and `durable` refer to.
    pub session: u32,
    /// Incarnation of `to` that was heard.
    pub to_incarnation: u32,
    /// Incarnation of the acker (`from`): a change tells the acked torus
    /// that its successor restarted and needs a new session.
    pub from_incarnation: u32,
    /// Highest seq applied to the mirror.
    pub applied: u64,
    /// Highest seq whose migrations-in are committed at the acker's successor.
    pub durable: u64,
    /// Accepted offer (0: none).
    pub accept: u64,
    /// Acker's total runnable weight (saturating).
    pub load: u32,
}

impl Ack {
    /// Encode into exactly [`ACK_LEN`] bytes.
    pub fn encode(&self) -> [u8; ACK_LEN] {
        let mut b = [0u8; ACK_LEN];
        put(&mut b, 0, &ACK_MAGIC.to_le_bytes());
        put(&mut b, 4, &ACK_VERSION.to_le_bytes());
        put(&mut b, 6, &self.flags.to_le_bytes());
        put(&mut b, 8, &self.from.to_le_bytes());
        put(&mut b, 10, &self.to.to_le_bytes());
        put(&mut b, 12, &self.epoch.to_le_bytes());
        put(&mut b, 16, &self.members.to_le_bytes());
        put(&mut b, 24, &self.heard_hb.to_le_bytes());
        put(&mut b, 32, &self.session.to_le_bytes());
        put(&mut b, 36, &self.to_incarnation.to_le_bytes());
        put(&mut b, 40, &self.applied.to_le_bytes());
        put(&mut b, 48, &self.durable.to_le_bytes());
        put(&mut b, 56, &self.accept.to_le_bytes());
        put(&mut b, 64, &self.load.to_le_bytes());
        put(&mut b, 68, &self.from_incarnation.to_le_bytes());
        let c = crc(&b[..ACK_LEN - 4]);
        put(&mut b, ACK_LEN - 4, &c.to_le_bytes());
        b
    }

    /// Decode and validate; every malformed input is an `Err`.
    pub fn decode(b: &[u8]) -> Result<Ack, DecodeError> {
        check_frame(b, ACK_LEN, ACK_MAGIC, ACK_VERSION)?;
        let a = Ack {
            flags: u16_at(b, 6),
            from: u16_at(b, 8),
            to: u16_at(b, 10),
            epoch: u32_at(b, 12),
            members: u64_at(b, 16),
            heard_hb: u64_at(b, 24),
            session: u32_at(b, 32),
            to_incarnation: u32_at(b, 36),
            applied: u64_at(b, 40),
            durable: u64_at(b, 48),
            accept: u64_at(b, 56),
            load: u32_at(b, 64),
            from_incarnation: u32_at(b, 68),
        };
        ensure(a.flags & !A_ALL == 0, "flags")?;
        ensure(
            usize::from(a.from) < MAX_TORI && usize::from(a.to) < MAX_TORI && a.from != a.to,
            "torus id",
        )?;
        ensure(a.durable <= a.applied, "durable past applied")?;
        ensure(all_zero(&b[72..ACK_LEN - 4]), "reserved")?;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Ack {
        Ack {
            flags: A_NO_MIGRATE,
            from: 2,
            to: 1,
            epoch: 3,
            members: 7,
            heard_hb: 10,
            session: 1,
            to_incarnation: 0,
            applied: 20,
            durable: 19,
            accept: 42,
            load: 3000,
            from_incarnation: 5,
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(Ack::decode(&sample().encode()), Ok(sample()));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Ack::decode(&bytes);
        }

        #[test]
        fn bit_flips_are_rejected(bit in 0usize..ACK_LEN * 8) {
            let mut b = sample().encode();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Ack::decode(&b).is_err());
        }

        #[test]
        fn resealed_garbage_never_panics(body in proptest::collection::vec(any::<u8>(), ACK_LEN - 10..=ACK_LEN - 10)) {
            let mut b = [0u8; ACK_LEN];
            b[..4].copy_from_slice(&ACK_MAGIC.to_le_bytes());
            b[4..6].copy_from_slice(&ACK_VERSION.to_le_bytes());
            b[6..ACK_LEN - 4].copy_from_slice(&body);
            let c = crc(&b[..ACK_LEN - 4]);
            b[ACK_LEN - 4..].copy_from_slice(&c.to_le_bytes());
            if let Ok(a) = Ack::decode(&b) {
                prop_assert_eq!(a.encode(), b);
            }
        }
    }
}
