//! The view: which tori are members of the ring, and who follows whom.
//!
//! The ring order is the id order among members, so every torus computes
//! the same successor and predecessor from the same view without any
//! further agreement.

use crate::table::TorusId;

/// A membership view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct View {
    /// Bumped by every membership change.
    pub epoch: u32,
    /// Bit `t` set when torus `t` is a member.
    pub members: u64,
}

impl View {
    /// A view containing tori `0..n` at epoch 0.
    pub fn first(n: usize) -> Self {
        let members = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        View { epoch: 0, members }
    }

    /// True if `t` is a member.
    pub fn contains(&self, t: TorusId) -> bool {
        t < 64 && self.members >> t & 1 == 1
    }

    /// Number of members.
    pub fn len(&self) -> u32 {
        self.members.count_ones()
    }

    /// True when nobody is a member.
    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// The next member after `t` in ring order (may be `t` itself when alone;
    /// `None` when there are no other members).
    pub fn successor(&self, t: TorusId) -> Option<TorusId> {
        let others = self.members & !(1u64.checked_shl(t.into()).unwrap_or(0));
        if others == 0 {
            return None;
        }
        let above = others & !((2u64.checked_shl(t.into()).unwrap_or(0)).wrapping_sub(1));
        let pick = if above != 0 { above } else { others };
        Some(pick.trailing_zeros() as TorusId)
    }

    /// The previous member before `t` in ring order.
    pub fn predecessor(&self, t: TorusId) -> Option<TorusId> {
        let others = self.members & !(1u64.checked_shl(t.into()).unwrap_or(0));
        if others == 0 {
            return None;
        }
        let below = others & (1u64.checked_shl(t.into()).unwrap_or(0)).wrapping_sub(1);
        let pick = if below != 0 { below } else { others };
        Some(63 - pick.leading_zeros() as TorusId)
    }

    /// True if `other` supersedes this view (views only move forward; the
    /// member mask breaks ties so that all tori converge on one view).
    pub fn is_superseded_by(&self, other: &View) -> bool {
        (other.epoch, other.members) > (self.epoch, self.members)
    }

    /// This view with `t` removed (epoch + 1).
    pub fn without(&self, t: TorusId) -> View {
        View {
            epoch: self.epoch + 1,
            members: self.members & !(1u64 << (t % 64)),
        }
    }

    /// This view with `t` added (epoch + 1).
    pub fn with(&self, t: TorusId) -> View {
        View {
            epoch: self.epoch + 1,
            members: self.members | 1u64 << (t % 64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_order_wraps() {
        let v = View::first(3);
        assert_eq!(v.successor(0), Some(1));
        assert_eq!(v.successor(2), Some(0));
        assert_eq!(v.predecessor(0), Some(2));
        assert_eq!(v.predecessor(1), Some(0));
        let w = v.without(1);
        assert_eq!(w.successor(0), Some(2));
        assert_eq!(w.predecessor(2), Some(0));
        assert_eq!(w.without(2).successor(0), None);
        let big = View {
            epoch: 0,
            members: 1 << 63 | 1,
        };
        assert_eq!(big.successor(63), Some(0));
        assert_eq!(big.predecessor(0), Some(63));
        // A non-member still has a place in the ring (used when joining).
        assert_eq!(w.successor(1), Some(2));
        assert_eq!(w.predecessor(1), Some(0));
    }
}
