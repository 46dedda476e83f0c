//! A directory that grows past what the inode's four inline extents hold:
//! RSE OS patch 6 (crates/rsext4/PATCHES.md).
//!
//! Adding a block to an htree directory inserts its extent, which may
//! allocate extent-tree blocks (a leaf split, a deeper root) and count them
//! in the inode's i_blocks; the directory code then stored the block count
//! it had read before the insertion plus one block, dropping them. e2fsck:
//! "Inode 12, i_blocks is 504, should be 520" after 10,000 names (found by
//! RSE OS's `ext4_bulk_tree_debugfs` scenario).

mod common;

use common::{e2fsck_clean, make_image, tool_available, FileBlockDevice};
use rsext4::*;

#[test]
fn ten_thousand_names_keep_the_block_count() {
    if !tool_available("mkfs.ext4") || !tool_available("e2fsck") {
        panic!("mkfs.ext4 and e2fsck are needed (e2fsprogs)");
    }
    let image = make_image(
        "rsext4-dir-blocks",
        "160M",
        "3c2b1a09-8f7e-4d6c-9b5a-0123456789ab",
    );
    let mut device = Jbd2Dev::initial_jbd2dev(0, FileBlockDevice::open(&image), true);
    let mut fs = Ext4FileSystem::mount(&mut device).expect("mount");
    mkdir(&mut device, &mut fs, "/many").expect("mkdir");
    // Files in between keep the directory's blocks apart, so that its
    // extents cannot merge and the tree has to grow.
    for i in 0..10_000 {
        mkfile(
            &mut device,
            &mut fs,
            &format!("/many/f{i}"),
            Some(format!("small file {i}\n").as_bytes()),
            None,
        )
        .expect("create");
    }
    umount(fs, &mut device).expect("umount");
    drop(device);
    e2fsck_clean(&image);
    let _ = std::fs::remove_file(&image);
}
