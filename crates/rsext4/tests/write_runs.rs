//! `write_inode_runs_in_place`: many page runs of one inode in one call,
//! RSE OS patch 5 (crates/rsext4/PATCHES.md). Runs over initialized
//! blocks inside the size go straight to the device; holes, unwritten
//! extents, partial blocks and extensions go the single-run way. Either
//! way the file must read back as written, the in-place answer must be
//! true only when no size or mapping changed, and e2fsck must be clean.

mod common;

use common::*;
use rsext4::{
    file::{write_inode_data_in_place, write_inode_runs_in_place},
    *,
};

const BLOCK: usize = 4096;
const SEED: &str = "0f6d1a52-3b8e-4c21-9d47-5e2a8b1c7f30";

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn read_all(
    device: &mut Jbd2Dev<FileBlockDevice>,
    fs: &mut Ext4FileSystem,
    n: InodeNumber,
    len: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; len + BLOCK];
    let got = read_inode_data_into(device, fs, n, 0, &mut out).expect("read");
    out.truncate(got);
    out
}

/// Applies `runs` to the model of the file's bytes.
fn apply(model: &mut Vec<u8>, runs: &[(u64, &[u8])]) {
    for &(off, data) in runs {
        let (off, end) = (off as usize, off as usize + data.len());
        if model.len() < end {
            model.resize(end, 0);
        }
        model[off..end].copy_from_slice(data);
    }
}

#[test]
fn scattered_runs_read_back_and_leave_a_clean_image() {
    if !tool_available("mkfs.ext4") || !tool_available("e2fsck") {
        eprintln!("skipped: mkfs.ext4/e2fsck not available");
        return;
    }
    let image = make_image("rsext4-write-runs", "64M", SEED);
    let mut device = Jbd2Dev::initial_jbd2dev(0, FileBlockDevice::open(&image), true);
    let mut fs = Ext4FileSystem::mount(&mut device).expect("mount");
    mkfile(&mut device, &mut fs, "/f", None, None).expect("create");
    let (n, _) = dir::get_inode_with_num(&mut fs, &mut device, "/f")
        .expect("lookup")
        .expect("/f exists");

    // 512 KiB written, a hole to 768 KiB, one block there, then 64 KiB
    // preallocated (unwritten) inside the size.
    let mut model = pattern(512 * 1024, 1);
    write_inode_data(&mut device, &mut fs, n, 0, &model).expect("write");
    let tail = pattern(BLOCK, 2);
    write_inode_data(&mut device, &mut fs, n, 768 * 1024, &tail).expect("write tail");
    apply(&mut model, &[(768 * 1024, &tail)]);
    preallocate_inode(
        &mut device,
        &mut fs,
        n,
        600 * 1024,
        64 * 1024,
        PreallocationOptions::KEEP_SIZE,
    )
    .expect("preallocate");

    // A partial in-place write leaves block 3 dirty in the data block
    // cache; the batch below overwrites it whole, straight to the device:
    // the cached copy must not come back.
    let partial = pattern(100, 3);
    assert!(
        write_inode_data_in_place(&mut device, &mut fs, n, 3 * 4096 + 10, &partial)
            .expect("partial")
    );
    apply(&mut model, &[(3 * 4096 + 10, &partial)]);

    // Only overwrites of initialized blocks: in place.
    let pages: Vec<Vec<u8>> = (0..8).map(|i| pattern(BLOCK, 10 + i)).collect();
    let two = pattern(2 * BLOCK, 30);
    let runs: Vec<(u64, &[u8])> = vec![
        (0, &pages[0]),
        (3 * 4096, &pages[1]),
        (9 * 4096, &two),
        (100 * 4096, &pages[2]),
        (127 * 4096, &pages[3]),
        (768 * 1024, &pages[4]),
    ];
    assert!(write_inode_runs_in_place(&mut device, &mut fs, n, &runs).expect("runs in place"));
    apply(&mut model, &runs);
    assert_eq!(read_all(&mut device, &mut fs, n, model.len()), model);

    // Mixed: a partial block, a hole, an unwritten extent, an extension
    // past the end, around in-place ones.
    let odd = pattern(1000, 40);
    let runs: Vec<(u64, &[u8])> = vec![
        (5 * 4096, &pages[5]),
        (20 * 4096 + 7, &odd),
        (520 * 1024, &pages[6]),
        (604 * 1024, &two),
        (772 * 1024, &pages[7]),
        (120 * 4096, &pages[0]),
    ];
    assert!(!write_inode_runs_in_place(&mut device, &mut fs, n, &runs).expect("mixed runs"));
    apply(&mut model, &runs);
    assert_eq!(read_all(&mut device, &mut fs, n, model.len()), model);

    umount(fs, &mut device).expect("umount");
    drop(device);
    e2fsck_clean(&image);

    let mut device = Jbd2Dev::initial_jbd2dev(0, FileBlockDevice::open(&image), true);
    let mut fs = Ext4FileSystem::mount(&mut device).expect("remount");
    assert_eq!(read_all(&mut device, &mut fs, n, model.len()), model);
    umount(fs, &mut device).expect("umount");
    drop(device);
    let _ = std::fs::remove_file(&image);
}
