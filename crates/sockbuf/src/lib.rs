//! A socket's receive queue: what one end has sent and the other not yet
//! read, bounded in bytes. The same queue serves a byte stream
//! (SOCK_STREAM: writes merge, a read takes what it can) and records
//! (SOCK_DGRAM, SOCK_SEQPACKET: a write is one record, a read takes one
//! record and drops what does not fit). A write may carry an attachment
//! (the kernel's ancillary data: passed descriptors, credentials) and a
//! sender address; the queue only keeps them next to their bytes and
//! hands them out with them, as Linux's skbs do.
//!
//! Blocking, waking and memory charging are the kernel's: every call here
//! returns at once, and [`SockQueue::charge`] says how many bytes of
//! kernel memory the queue holds for its sender.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// What a queued record costs beyond its bytes (Linux charges an skb's
/// truesize: its data plus ~600 bytes of header and bookkeeping). Small
/// records are what could otherwise exhaust memory cheaply.
pub const RECORD_OVERHEAD: usize = 256;

/// Largest record a stream write makes or grows: larger writes take
/// several, so appending never copies more than this.
pub const JOIN_MAX: usize = 16 * 1024;

/// One write (a record) with what came with it.
#[derive(Debug)]
struct Record<A> {
    data: Vec<u8>,
    /// Bytes of `data` already read (streams read records in pieces).
    off: usize,
    attach: Option<A>,
    from: Option<Vec<u8>>,
}

impl<A> Record<A> {
    fn unread(&self) -> usize {
        self.data.len() - self.off
    }

    fn cost(&self) -> usize {
        self.data.capacity() + RECORD_OVERHEAD
    }
}

/// What a read took: the bytes, the record's full length (larger than
/// `data.len()` when a record was truncated), its attachment and sender.
#[derive(Debug)]
pub struct Read<A> {
    pub data: Vec<u8>,
    pub full_len: usize,
    pub attach: Option<A>,
    pub from: Option<Vec<u8>>,
}

/// Why a write did not go in.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// No room now (a blocking writer waits for a read).
    NoRoom,
    /// Larger than the queue could ever hold (EMSGSIZE for records).
    TooBig,
    /// The heap could not hold it (ENOBUFS).
    NoMemory,
}

/// A bounded queue of bytes or records.
#[derive(Debug)]
pub struct SockQueue<A> {
    recs: VecDeque<Record<A>>,
    /// Unread bytes.
    bytes: usize,
    /// Kernel memory held: record buffers plus [`RECORD_OVERHEAD`] each.
    charge: usize,
    /// Most `charge` may reach (the sender's SO_SNDBUF).
    limit: usize,
    /// Most records queued at once (Linux's max_dgram_qlen for datagrams).
    max_records: usize,
}

impl<A: Clone> SockQueue<A> {
    /// An empty queue holding at most `limit` bytes of charge and
    /// `max_records` records.
    pub fn new(limit: usize, max_records: usize) -> SockQueue<A> {
        SockQueue {
            recs: VecDeque::new(),
            bytes: 0,
            charge: 0,
            limit,
            max_records: max_records.max(1),
        }
    }

    /// Unread bytes (FIONREAD on a stream).
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is queued (a record of 0 bytes counts as something).
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Records queued.
    pub fn records(&self) -> usize {
        self.recs.len()
    }

    /// The length of the first record (FIONREAD on a datagram socket).
    pub fn first_len(&self) -> usize {
        self.recs.front().map_or(0, |r| r.unread())
    }

    /// Kernel memory held now.
    pub fn charge(&self) -> usize {
        self.charge
    }

    /// The bound on [`SockQueue::charge`].
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the bound (SO_SNDBUF); what is queued stays.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Whether a stream write of at least one byte could go in now.
    pub fn stream_writable(&self) -> bool {
        self.charge + RECORD_OVERHEAD < self.limit
    }

    /// Whether a record of `len` bytes could go in now.
    pub fn record_fits(&self, len: usize) -> bool {
        self.recs.len() < self.max_records && self.charge + len + RECORD_OVERHEAD <= self.limit
    }

    /// Appends as much of `data` as fits to a byte stream and returns how
    /// much (0 for an empty write: a stream sends nothing then, not even
    /// the attachment, as Linux). Bytes join the last record when neither
    /// carries an attachment and it is under [`JOIN_MAX`] (so a stream of
    /// small writes costs few records); an attachment goes with the first
    /// record this write starts.
    pub fn push_stream(&mut self, data: &[u8], mut attach: Option<A>) -> usize {
        let mut done = 0;
        while done < data.len() {
            let rest = &data[done..];
            let room = self.limit.saturating_sub(self.charge);
            let last = self.recs.back_mut();
            let join = attach.is_none()
                && last.as_ref().is_some_and(|r| {
                    r.attach.is_none() && r.from.is_none() && r.data.len() < JOIN_MAX
                });
            if join {
                let last = self.recs.back_mut().expect("checked above");
                // Its spare capacity is already charged.
                let spare = last.data.capacity() - last.data.len();
                let n = rest.len().min(room + spare).min(JOIN_MAX - last.data.len());
                if n == 0 {
                    break;
                }
                let before = last.data.capacity();
                if last.data.try_reserve(n).is_err() {
                    break;
                }
                last.data.extend_from_slice(&rest[..n]);
                self.charge += last.data.capacity() - before;
                self.bytes += n;
                done += n;
                continue;
            }
            if room <= RECORD_OVERHEAD {
                break;
            }
            let n = rest.len().min(room - RECORD_OVERHEAD).min(JOIN_MAX);
            let mut v = Vec::new();
            if v.try_reserve_exact(n).is_err() {
                break;
            }
            v.extend_from_slice(&rest[..n]);
            let rec = Record {
                data: v,
                off: 0,
                attach: attach.take(),
                from: None,
            };
            self.charge += rec.cost();
            self.bytes += n;
            self.recs.push_back(rec);
            done += n;
        }
        done
    }

    /// Queues `data` as one record (whole or not at all).
    pub fn push_record(
        &mut self,
        data: &[u8],
        attach: Option<A>,
        from: Option<Vec<u8>>,
    ) -> Result<(), Full> {
        if data.len() + RECORD_OVERHEAD > self.limit {
            return Err(Full::TooBig);
        }
        if !self.record_fits(data.len()) {
            return Err(Full::NoRoom);
        }
        let mut v = Vec::new();
        v.try_reserve_exact(data.len())
            .map_err(|_| Full::NoMemory)?;
        v.extend_from_slice(data);
        let rec = Record {
            data: v,
            off: 0,
            attach,
            from,
        };
        self.charge += rec.cost();
        self.bytes += data.len();
        self.recs.push_back(rec);
        Ok(())
    }

    /// Reads up to `max` bytes of a byte stream (`peek`: leaves them).
    /// A read stops before a record with an attachment unless that
    /// record is first, and after it if it is, so an attachment arrives
    /// with the first byte its writer sent with it and never merges with
    /// another. None when the queue is empty (or the heap is short).
    pub fn read_stream(&mut self, max: usize, peek: bool) -> Option<Read<A>> {
        let first = self.recs.front()?;
        let attach = if peek { first.attach.clone() } else { None };
        let mut want = 0;
        for (i, r) in self.recs.iter().enumerate() {
            if i > 0 && r.attach.is_some() {
                break;
            }
            want += r.unread();
            if want >= max || r.attach.is_some() {
                break;
            }
        }
        let want = want.min(max);
        let mut data = Vec::new();
        data.try_reserve_exact(want).ok()?;
        let mut attach = attach;
        let mut i = 0;
        while data.len() < want {
            let Some(r) = self.recs.get_mut(i) else { break };
            let take = (want - data.len()).min(r.unread());
            data.extend_from_slice(&r.data[r.off..r.off + take]);
            if !peek {
                if attach.is_none() {
                    attach = r.attach.take();
                }
                r.off += take;
                self.bytes -= take;
                if r.unread() == 0 {
                    self.pop_front();
                } else {
                    break;
                }
            } else {
                i += 1;
            }
        }
        let full_len = data.len();
        Some(Read {
            data,
            full_len,
            attach,
            from: None,
        })
    }

    /// Reads the first record, at most `max` bytes of it; the rest of it
    /// is dropped unless `peek`. None when the queue is empty.
    pub fn read_record(&mut self, max: usize, peek: bool) -> Option<Read<A>> {
        let r = self.recs.front_mut()?;
        let full_len = r.unread();
        let n = full_len.min(max);
        let mut data = Vec::new();
        if data.try_reserve_exact(n).is_err() {
            return None;
        }
        data.extend_from_slice(&r.data[r.off..r.off + n]);
        if peek {
            return Some(Read {
                data,
                full_len,
                attach: r.attach.clone(),
                from: r.from.clone(),
            });
        }
        let attach = r.attach.take();
        let from = r.from.take();
        self.pop_front();
        Some(Read {
            data,
            full_len,
            attach,
            from,
        })
    }

    fn pop_front(&mut self) {
        if let Some(r) = self.recs.pop_front() {
            self.charge -= r.cost();
            self.bytes -= r.unread();
        }
    }

    /// Empties the queue (its reader is gone) and returns the
    /// attachments, for the caller to drop outside its locks.
    pub fn clear(&mut self) -> Vec<A> {
        let out = self.recs.drain(..).filter_map(|r| r.attach).collect();
        self.recs = VecDeque::new();
        self.bytes = 0;
        self.charge = 0;
        out
    }
}

#[cfg(test)]
mod tests;
