//! ext4's page cache: `rsetest page_cache` on a mount whose cache is
//! capped small (read(2)'s pages stay coherent with writes, truncates,
//! mappings, other processes, unlink and rename-over, and within the
//! cap), and on one allowed most of RAM (a process needing the memory
//! gets it back from the cache, not an OOM kill); both end in a clean
//! `e2fsck -fn`. The small cache's dirty limit (1/16 of it) bounds
//! `rsetest writeback`'s dirty pages there.

use crate::ext4_programs::{fsck_clean, rsetest_only, with_empty_image};
use crate::scenarios::{exec_opts, expect_lines};
use crate::RunOpts;

/// Cap of the first boot, KiB: far below the 16 MiB file read.
const SMALL_CAP_KB: u32 = 2048;

pub fn ext4_page_cache_coherent() -> Result<(), String> {
    with_empty_image("ext4-pagecache", "64M", |img| {
        run(
            img,
            &format!("rsetest page_cache /mnt/d 16 {SMALL_CAP_KB}; echo \"page_cache status $?\"; rsetest shared_file /mnt/d; echo \"shared_file status $?\"; rsetest writeback /mnt/d {}; echo \"writeback status $?\"", SMALL_CAP_KB / 16),
            &["page_cache status 0", "shared_file status 0", "writeback status 0"],
            None,
            vec![format!("pagecache.kb={SMALL_CAP_KB}")],
        )
    })
}

/// A 256 MiB guest reads a 160 MiB file into a cache allowed all of RAM,
/// then a child takes what is free and half of that.
pub fn ext4_page_cache_reclaim() -> Result<(), String> {
    with_empty_image("ext4-pagecache-reclaim", "256M", |img| {
        run(
            img,
            "rsetest page_cache /mnt/d 160; echo \"page_cache status $?\"",
            &["page_cache status 0"],
            Some(256),
            vec!["pagecache.kb=1048576".into()],
        )
    })
}

fn run(
    img: &std::path::Path,
    cmds: &str,
    want: &[&str],
    mem: Option<u32>,
    append: Vec<String>,
) -> Result<(), String> {
    let opts = RunOpts {
        exec: Some(format!(
            "mkdir -p /mnt/d; mount -t ext4 /dev/vda /mnt/d && echo mounted; {cmds}; umount /mnt/d && echo umounted"
        )),
        adds: rsetest_only()?,
        disks: vec![img.to_path_buf()],
        mem,
        append,
        ..Default::default()
    };
    let (c, _) = exec_opts(&opts, "ext4-pagecache")?;
    let mut lines = vec!["mounted".to_string()];
    lines.extend(want.iter().map(|s| s.to_string()));
    lines.push("umounted".into());
    expect_lines(&c, &lines)?;
    fsck_clean(img)
}
