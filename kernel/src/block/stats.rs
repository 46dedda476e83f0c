//! A disk's I/O statistics, as Linux keeps them for `/proc/diskstats`
//! (Documentation/admin-guide/iostats.rst): requests completed, sectors
//! moved, milliseconds spent, requests in flight, flushes. `iostat`,
//! `vmstat -d` and a benchmark that wants to know how many flushes a
//! transaction costs read them; the same counters on Linux make the two
//! kernels' disk traffic comparable.
//!
//! Times are per batch: the requests of one call go to the device
//! together, and each is charged the batch's wall time (what Linux's
//! per-request accounting gives when they complete together).

use core::fmt::Write as _;

use alloc::string::String;
use spin::Mutex;

/// Counters of one disk.
#[derive(Default)]
pub struct Stats(Mutex<Counts>);

#[derive(Default, Clone, Copy)]
struct Counts {
    reads: u64,
    read_sectors: u64,
    read_ns: u64,
    writes: u64,
    write_sectors: u64,
    write_ns: u64,
    flushes: u64,
    flush_ns: u64,
    /// Requests (and flushes) submitted and not completed.
    in_flight: u64,
    /// Time with at least one in flight (`io_ticks`), closed periods.
    busy_ns: u64,
    /// When `in_flight` last went from 0 to more.
    busy_since: u64,
    /// Sum over requests of their time in flight (`time_in_queue`).
    weighted_ns: u64,
}

/// What one batch held.
#[derive(Default, Clone, Copy)]
pub struct Batch {
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub write_sectors: u64,
    pub flushes: u64,
}

impl Batch {
    fn requests(&self) -> u64 {
        self.reads + self.writes + self.flushes
    }
}

/// A batch in flight: counted as completed when dropped (whether the
/// device succeeded or not, as Linux counts completions).
pub struct InFlight<'a> {
    stats: &'a Stats,
    batch: Batch,
    start: u64,
}

impl Stats {
    /// Notes `batch` going to the device now.
    pub fn start(&self, batch: Batch) -> InFlight<'_> {
        let now = hal::time::now_ns();
        let mut c = self.0.lock();
        if c.in_flight == 0 {
            c.busy_since = now;
        }
        c.in_flight += batch.requests();
        InFlight {
            stats: self,
            batch,
            start: now,
        }
    }

    /// The line of `/proc/diskstats` for disk `name` with device number
    /// (`major`, `minor`): the 17 counters after the name that Linux 5.5
    /// and later print (discards are never made: zeros).
    pub fn line(&self, major: u32, minor: u32, name: &str) -> String {
        let now = hal::time::now_ns();
        let c = *self.0.lock();
        let busy = c.busy_ns
            + if c.in_flight > 0 {
                now.saturating_sub(c.busy_since)
            } else {
                0
            };
        let ms = |ns: u64| ns / 1_000_000;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{major:4} {minor:7} {name} {} 0 {} {} {} 0 {} {} {} {} {} 0 0 0 0 {} {}",
            c.reads,
            c.read_sectors,
            ms(c.read_ns),
            c.writes,
            c.write_sectors,
            ms(c.write_ns),
            c.in_flight,
            ms(busy),
            ms(c.weighted_ns),
            c.flushes,
            ms(c.flush_ns),
        );
        s
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let now = hal::time::now_ns();
        let took = now.saturating_sub(self.start);
        let b = self.batch;
        let mut c = self.stats.0.lock();
        c.reads += b.reads;
        c.read_sectors += b.read_sectors;
        c.writes += b.writes;
        c.write_sectors += b.write_sectors;
        c.flushes += b.flushes;
        c.read_ns += took * b.reads;
        c.write_ns += took * b.writes;
        c.flush_ns += took * b.flushes;
        c.weighted_ns += took * b.requests();
        c.in_flight -= b.requests();
        if c.in_flight == 0 {
            c.busy_ns += now.saturating_sub(c.busy_since);
        }
    }
}
