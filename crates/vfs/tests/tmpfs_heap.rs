//! The heap tmpfs metadata takes stays under the bounds the kernel sizes
//! its limits with: `MAX_HEAP_PER_INODE` per inode slot and
//! `MAX_HEAP_PER_PAGE` per data page. One test in this binary, so nothing
//! else allocates while it measures.

use std::alloc::System;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use vfs::{
    HeapPages, PageStore, Timespec, Tmpfs, TmpfsConfig, MAX_HEAP_PER_INODE, MAX_HEAP_PER_PAGE,
    PAGE_SIZE, ROOT_INO,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What an allocator such as talc adds to each live allocation (a tag and
/// rounding), on top of the bytes asked for.
const PER_ALLOCATION_OVERHEAD: usize = 32;

/// Heap bytes held now that were not when `region` started.
fn held(region: &Region<System>) -> usize {
    let s = region.change();
    let bytes = (s.bytes_allocated + s.bytes_reallocated.max(0) as usize)
        .saturating_sub(s.bytes_deallocated);
    let live = s.allocations.saturating_sub(s.deallocations);
    bytes + live * PER_ALLOCATION_OVERHEAD
}

fn name(i: usize) -> Vec<u8> {
    // NAME_MAX bytes, the most a name can cost.
    let mut n = format!("{i:08}").into_bytes();
    n.resize(255, b'n');
    n
}

#[test]
fn metadata_heap_stays_within_the_published_bounds() {
    const N: usize = 3000;
    let mut fs = Tmpfs::new(TmpfsConfig::default(), Timespec::default());
    let d = fs.mkdir(ROOT_INO, b"d", 0o755).unwrap();
    let mut worst = 0;
    // Each kind of inode slot, N of them in one directory: files, the
    // longest inline symlink targets, directories, and extra hard links.
    for kind in 0..4 {
        let region = Region::new(GLOBAL);
        let first = fs.create(d, b"first", 0o644).unwrap();
        for i in 0..N {
            let n = name(kind * N + i);
            match kind {
                0 => drop(fs.create(d, &n, 0o644).unwrap()),
                1 => drop(fs.symlink(d, &n, &[b't'; 127]).unwrap()),
                2 => drop(fs.mkdir(d, &n, 0o755).unwrap()),
                _ => fs.link(d, &n, first).unwrap(),
            }
        }
        let per = held(&region) / N;
        println!("kind {kind}: {per} heap bytes per inode slot");
        worst = worst.max(per);
        fs.unlink(d, b"first").unwrap();
    }
    assert!(
        worst as u64 <= MAX_HEAP_PER_INODE,
        "{worst} bytes per inode slot, bound {MAX_HEAP_PER_INODE}"
    );
    fs.fsck().unwrap();

    // The page index: pages written in order and in a scattered order.
    let pages = 20_000u64;
    // The heap page store's own pages are what the kernel keeps in frames:
    // only the index counts here, so the store's cost is measured apart.
    let store = {
        let mut s = HeapPages::default();
        let region = Region::new(GLOBAL);
        for _ in 0..pages {
            s.alloc().unwrap();
        }
        held(&region)
    };
    for scattered in [false, true] {
        // A fresh file system, whose store grows as the one measured above.
        let mut fs = Tmpfs::new(TmpfsConfig::default(), Timespec::default());
        let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
        let region = Region::new(GLOBAL);
        for i in 0..pages {
            let index = if scattered { (i * 7919) % pages } else { i };
            fs.write(f, index * PAGE_SIZE as u64 + 1, b"x").unwrap();
        }
        let per = held(&region).saturating_sub(store) as u64 / pages;
        println!("scattered {scattered}: {per} heap bytes per page");
        assert!(
            per <= MAX_HEAP_PER_PAGE,
            "{per} bytes per page, bound {MAX_HEAP_PER_PAGE}"
        );
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.fsck().unwrap();
    }
}
