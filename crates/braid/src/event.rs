//! Timestamped events: the unit of work of a torus.
//!
//! An event is 24 bytes so that a queue of thousands stays cache-friendly;
//! the kernel's scheduler uses the same type (a time slice is an event
//! stamped with the process's virtual deadline).

/// Virtual time in nanoseconds.
pub type Time = u64;

/// A unit of work for one torus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
#[repr(C)]
pub struct Event {
    /// When the event is due.
    pub time: Time,
    /// Kind-specific data (for [`kind::SLICE`], the pid).
    pub payload: u64,
    /// Target lattice cell index.
    pub target: u32,
    /// What the event is; kinds below [`kind::USER`] belong to the protocol.
    pub kind: u16,
    /// Kind-specific sub-kind (for [`kind::CORRECTIVE`], a [`Corrective`]).
    pub aux: u16,
}

/// Event kinds used by the protocol.
pub mod kind {
    /// Run one time slice of the process whose pid is the payload.
    pub const SLICE: u16 = 1;
    /// Publish the projection (the braid interval elapsed).
    pub const BRAID_TICK: u16 = 2;
    /// A corrective event injected by verification; `aux` says which.
    pub const CORRECTIVE: u16 = 3;
    /// First kind free for users of the crate.
    pub const USER: u16 = 0x100;
}

/// Why verification injected a corrective event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Corrective {
    /// The mirror of the predecessor diverged; a resync was requested.
    Resync = 1,
    /// The predecessor was declared failed and reconstructed here.
    Reconstructed = 2,
    /// A projection from a torus outside the view was answered with a fence.
    Fenced = 3,
    /// A migrated-in process was already owned or adopted here (duplicate).
    DuplicateDropped = 4,
}

impl Event {
    /// A time-slice event for `pid` in `cell`.
    pub const fn slice(time: Time, pid: u64, cell: u32) -> Self {
        Event {
            time,
            payload: pid,
            target: cell,
            kind: kind::SLICE,
            aux: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_24_bytes() {
        assert_eq!(core::mem::size_of::<Event>(), 24);
    }
}
